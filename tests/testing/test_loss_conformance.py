"""The loss kit catches a loss whose tuples interact, and passes every built-in tuple loss."""

from __future__ import annotations

import types
from dataclasses import dataclass
from typing import Any

import pytest
import torch

from vpr_bench import BatchKind, LossSpec, hookimpl
from vpr_bench.registry import resolve
from vpr_bench.testing import LossConformance, isolated_manager


@dataclass
class MarginConfig:
    """Options of the test losses.

    Attributes:
        margin: Negatives closer than this are pushed away.
    """

    margin: float = 0.5


class Broadcasting(torch.nn.Module):
    """The loss hook's old example: ``anchors - positives`` compares every anchor with all."""

    def __init__(self, cfg: MarginConfig) -> None:
        super().__init__()
        self.margin = cfg.margin

    def forward(self, anchors: Any, positives: Any, negatives: Any) -> Any:
        d_pos = (anchors - positives).norm(dim=-1)  # [B, B]: every anchor, every positive
        d_neg = (anchors[:, None] - negatives).norm(dim=-1)
        return d_pos.pow(2).mean() + (self.margin - d_neg).clamp(min=0).pow(2).mean()


class BatchHardest(torch.nn.Module):
    """Each anchor's hardest negative over the whole batch: the loss is per-tuple in form only."""

    def __init__(self, cfg: MarginConfig) -> None:
        super().__init__()
        self.margin = cfg.margin

    def forward(self, anchors: Any, positives: Any, negatives: Any) -> Any:
        d_pos = (anchors[:, None] - positives).norm(dim=-1).mean(dim=1)
        pool = negatives.reshape(-1, negatives.shape[-1])  # every tuple's negatives
        d_neg = torch.cdist(anchors, pool).min(dim=1).values
        return (d_pos - d_neg + self.margin).clamp(min=0).mean()


def _spec(name: str, build: Any) -> LossSpec:
    module = types.ModuleType(f"test_loss_{name}")

    @hookimpl
    def vpr_bench_losses() -> Any:
        yield LossSpec(name, build=build, config_cls=MarginConfig, batch_kind=BatchKind.TUPLES)

    module.vpr_bench_losses = vpr_bench_losses  # type: ignore[attr-defined]
    return isolated_manager([module]).registries().losses.get(name)


@pytest.mark.parametrize(
    ("name", "build", "says"),
    [
        ("broadcasting", Broadcasting, "neither the mean nor the sum"),
        ("batch-hardest", BatchHardest, "tuples interact"),
    ],
)
def test_a_loss_whose_tuples_interact_fails_the_kit(name: str, build: Any, says: str) -> None:
    spec = _spec(name, build)
    kit = LossConformance()
    loss = resolve(spec.build)(MarginConfig())
    kit.test_finite_scalar(spec, loss)  # the older checks pass such a loss
    kit.test_differentiable(spec, loss)
    with pytest.raises(AssertionError, match=says):
        kit.test_tuples_are_independent(spec, loss)


@pytest.mark.parametrize("name", ["triplet"])
def test_the_builtin_tuple_losses_have_independent_tuples(name: str) -> None:
    spec = isolated_manager().registries().losses.get(name)
    LossConformance().test_tuples_are_independent(spec, resolve(spec.build)(None))
