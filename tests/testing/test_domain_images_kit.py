"""The kit's ``domain-images`` batch: four latent codes, rows independent per draw."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from vpr_bench import BatchKind, LossSpec
from vpr_bench.testing import LossConformance
from vpr_bench.testing.conformance import make_loss_batch


class PerDraw(torch.nn.Module):
    """Mean over draws of ``MSE(rec_a, enc_a) + MSE(rec_b, enc_b)``."""

    def forward(self, enc_a: Any, enc_b: Any, rec_a: Any, rec_b: Any) -> Any:
        a = (rec_a - enc_a.detach()).pow(2).flatten(1).mean(1)
        b = (rec_b - enc_b.detach()).pow(2).flatten(1).mean(1)
        return (a + b).mean()


class AcrossDraws(PerDraw):
    """Compares each draw's code with the batch mean: draws interact."""

    def forward(self, enc_a: Any, enc_b: Any, rec_a: Any, rec_b: Any) -> Any:
        return super().forward(enc_a.mean(0, keepdim=True), enc_b, rec_a, rec_b)


SPEC = LossSpec("toy-domain-images", build=PerDraw, config_cls=dict, batch_kind="domain-images")


def test_the_batch() -> None:
    batch = make_loss_batch(BatchKind.DOMAIN_IMAGES, torch.Generator().manual_seed(0))
    assert len(batch) == 4
    assert all(isinstance(t, torch.Tensor) and t.shape == (2, 4, 3, 3) for t in batch)
    assert [t.requires_grad for t in batch] == [False, False, True, True]  # type: ignore[union-attr]


def test_a_per_draw_loss_passes_and_interacting_draws_fail() -> None:
    kit = LossConformance()
    for check in (
        kit.test_finite_scalar,
        kit.test_differentiable,
        kit.test_decreases_when_optimised,
    ):
        check(SPEC, PerDraw())
    kit.test_tuples_are_independent(SPEC, PerDraw())
    with pytest.raises(AssertionError):
        kit.test_tuples_are_independent(SPEC, AcrossDraws())
