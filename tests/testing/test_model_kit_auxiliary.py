"""The model kit exempts parameters a model declares ``auxiliary_parameters`` (a loss-only head)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from vpr_bench.testing import ModelConformance


class WithHead(nn.Module):
    """A linear descriptor plus a projection head that only a loss would use."""

    descriptor_dim = 4

    def __init__(self, declare: bool) -> None:
        super().__init__()
        self.f = nn.Linear(3, 4)
        self.g = nn.Linear(4, 2)
        if declare:
            self.auxiliary_parameters = ("g.weight", "g.bias")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.f(x.mean(dim=(2, 3))), dim=1)


def test_a_declared_head_is_exempt_and_an_undeclared_one_fails() -> None:
    kit = ModelConformance()
    kit.test_gradients_reach_trainable_parameters(WithHead(declare=True))
    with pytest.raises(AssertionError, match="g.weight got no gradient"):
        kit.test_gradients_reach_trainable_parameters(WithHead(declare=False))
