"""The loss kit catches a loss whose tuples interact (tuples and region tuples), and passes every
built-in tuple loss."""

from __future__ import annotations

import types
from dataclasses import dataclass
from typing import Any

import pytest
import torch

from vpr_bench import BatchKind, LossSpec, hookimpl
from vpr_bench.registry import resolve
from vpr_bench.testing import LossConformance, isolated_manager
from vpr_bench.testing.conformance import make_loss_batch


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


class RegionMargin(torch.nn.Module):
    """A ``region-tuples`` loss whose tuples are independent: hinge on globals + masked gap."""

    def __init__(self, cfg: MarginConfig) -> None:
        super().__init__()
        self.margin = cfg.margin

    def forward(
        self,
        anchors: Any,
        pairs: Any,
        sim_diff: Any,
        sim_diff_teacher: Any,
        diff_mask: Any,
        generation: int,
    ) -> Any:
        s_pos = (anchors[:, 0] * pairs[:, 0, 0]).sum(dim=-1)  # [B]
        s_neg = (anchors[:, None, 0] * pairs[:, 1:, 0]).sum(dim=-1)  # [B, N]
        hard = (s_neg - s_pos[:, None] + self.margin).clamp(min=0).mean()
        gap = (sim_diff - sim_diff_teacher)[:, :, 0].pow(2).sum(dim=-1)  # [B, P]
        return hard + generation * (gap * diff_mask).sum(dim=1).mean()


class RegionBatchSoftmax(RegionMargin):
    """Its soft term is one softmax over every tuple's similarities: tuples interact."""

    def forward(
        self,
        anchors: Any,
        pairs: Any,
        sim_diff: Any,
        sim_diff_teacher: Any,
        diff_mask: Any,
        generation: int,
    ) -> Any:
        hard = super().forward(anchors, pairs, sim_diff, sim_diff_teacher, diff_mask, 0)
        student = torch.log_softmax(sim_diff[:, :, 0].reshape(-1) / 0.1, dim=0)
        target = torch.softmax(sim_diff_teacher[:, :, 0].reshape(-1) / 0.1, dim=0)
        return hard - generation * (target * student).sum()


def _region_spec(name: str, build: Any) -> LossSpec:
    module = types.ModuleType(f"test_region_loss_{name}")

    @hookimpl
    def vpr_bench_losses() -> Any:
        yield LossSpec(
            name, build=build, config_cls=MarginConfig, batch_kind=BatchKind.REGION_TUPLES
        )

    module.vpr_bench_losses = vpr_bench_losses  # type: ignore[attr-defined]
    return isolated_manager([module]).registries().losses.get(name)


def test_the_region_tuples_batch_follows_its_documented_layout() -> None:
    batch = make_loss_batch(BatchKind.REGION_TUPLES, torch.Generator().manual_seed(0))
    anchors, pairs, sim_diff, teacher, mask, generation = batch
    assert isinstance(anchors, torch.Tensor) and isinstance(pairs, torch.Tensor)
    assert isinstance(sim_diff, torch.Tensor) and isinstance(teacher, torch.Tensor)
    assert isinstance(mask, torch.Tensor)
    b, r, d = anchors.shape
    assert pairs.shape[0] == b and pairs.shape[2:] == (r, d) and pairs.shape[1] >= 2
    p = sim_diff.shape[1]
    assert sim_diff.shape == teacher.shape == (b, p, r, r) and mask.shape == (b, p)
    for unit in (anchors, pairs):
        torch.testing.assert_close(unit.norm(dim=-1), torch.ones(unit.shape[:-1]).double())
        assert unit.requires_grad
    assert sim_diff.requires_grad and sim_diff.is_leaf and not teacher.requires_grad
    assert sim_diff.abs().max() <= 1 + 1e-12  # cosines of unit regions
    assert mask.dtype == torch.bool and int((~mask).sum()) == 1  # one padded positive
    assert generation == 1


def test_a_region_tuples_loss_passes_the_kit() -> None:
    spec = _region_spec("region-margin", RegionMargin)
    kit = LossConformance()
    loss = resolve(spec.build)(MarginConfig())
    kit.test_finite_scalar(spec, loss)
    kit.test_differentiable(spec, loss)
    kit.test_tuples_are_independent(spec, loss)
    kit.test_decreases_when_optimised(spec, loss)


def test_a_region_tuples_loss_whose_tuples_interact_fails_the_kit() -> None:
    spec = _region_spec("region-batch-softmax", RegionBatchSoftmax)
    kit = LossConformance()
    loss = resolve(spec.build)(MarginConfig())
    kit.test_finite_scalar(spec, loss)
    kit.test_differentiable(spec, loss)
    with pytest.raises(AssertionError, match="tuples interact|gradient of the other tuples'"):
        kit.test_tuples_are_independent(spec, loss)
