"""The model kit's gradient check runs a model that declares domains once per domain."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from vpr_bench.testing import ModelConformance


class TwoDomains(nn.Module):
    """One linear head per domain over mean colours; ``forward(images, domain=label)``."""

    def __init__(self, reach_second: bool = True) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.heads = nn.ModuleList(nn.Linear(3, 4) for _ in range(2))
        self.domains = ("day", "night")
        self.descriptor_dim = 4
        self.reach_second = reach_second

    def forward(self, images: torch.Tensor, domain: str | None = None) -> torch.Tensor:
        index = 1 if domain == "night" and self.reach_second else 0
        return nn.functional.normalize(self.heads[index](images.mean(dim=(2, 3))), dim=1)


def test_every_domain_is_reached() -> None:
    ModelConformance().test_gradients_reach_trainable_parameters(TwoDomains())


def test_a_domain_the_forward_never_uses_fails() -> None:
    with pytest.raises(AssertionError, match=r"heads\.1\.weight got no gradient"):
        ModelConformance().test_gradients_reach_trainable_parameters(TwoDomains(False))


class TwoStages(TwoDomains):
    """Head 0 gives the first-stage descriptor, head 1 only the second stage."""

    def forward(self, images: torch.Tensor, domain: str | None = None) -> torch.Tensor:
        return nn.functional.normalize(self.heads[0](images.mean(dim=(2, 3))), dim=1)

    def second_stage(self, images: torch.Tensor, domain: str | None = None) -> torch.Tensor:
        return nn.functional.normalize(self.heads[1](images.mean(dim=(2, 3))), dim=1)


def test_a_second_stage_counts() -> None:
    ModelConformance().test_gradients_reach_trainable_parameters(TwoStages())
