"""SARE-ind and SARE-joint against OpenIBL's Trainer._get_loss (losses_openibl.npz) and by hand."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from vpr_bench_sare.loss import SAREIndLoss, SAREJointLoss


@pytest.mark.parametrize(
    ("name", "loss_cls"), [("sare_ind", SAREIndLoss), ("sare_joint", SAREJointLoss)]
)
def test_matches_openibl(oracles_dir: Path, name: str, loss_cls: type[torch.nn.Module]) -> None:
    with np.load(oracles_dir / "losses_openibl.npz") as npz:
        desc_np = npz["base__desc"]
        expected_loss = float(npz[f"base__{name}__loss"])
        expected_grad = npz[f"base__{name}__grad_desc"]
    desc = torch.from_numpy(desc_np).requires_grad_(True)
    loss = loss_cls()(desc[:, 0], desc[:, 1:2], desc[:, 2:])
    loss.backward()
    np.testing.assert_allclose(float(loss.detach()), expected_loss, rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(desc.grad.numpy(), expected_grad, rtol=1e-8, atol=1e-9)  # type: ignore[union-attr]


def test_hand_computed_values() -> None:
    # a = (1, 0); p at squared distance 0.5; negatives at squared distances 2 and 4.
    a = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    p = torch.tensor([[[0.5, 0.5]]], dtype=torch.float64)
    n = torch.tensor([[[0.0, 1.0], [-1.0, 0.0]]], dtype=torch.float64)
    joint = -math.log(math.exp(-0.5) / (math.exp(-0.5) + math.exp(-2) + math.exp(-4)))
    ind = (math.log1p(math.exp(0.5 - 2)) + math.log1p(math.exp(0.5 - 4))) / 2
    assert float(SAREJointLoss()(a, p, n)) == pytest.approx(joint, rel=1e-14)
    assert float(SAREIndLoss()(a, p, n)) == pytest.approx(ind, rel=1e-14)


def test_only_first_positive_is_used() -> None:
    gen = torch.Generator().manual_seed(0)
    a, p, n = (
        torch.randn(2, 4, generator=gen),
        torch.randn(2, 3, 4, generator=gen),
        torch.randn(2, 5, 4, generator=gen),
    )
    for loss in (SAREIndLoss(), SAREJointLoss()):
        torch.testing.assert_close(loss(a, p, n), loss(a, p[:, :1], n))


@pytest.mark.parametrize("loss_cls", [SAREIndLoss, SAREJointLoss])
def test_bad_shapes_are_rejected(loss_cls: type[torch.nn.Module]) -> None:
    with pytest.raises(ValueError, match=r"anchors \[B, D\], positives \[B, P>=1, D\]"):
        loss_cls()(torch.zeros(2, 4), torch.zeros(2, 4), torch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match=r"\(2, 4\), \(2, 1, 4\), \(2, 0, 4\)"):
        loss_cls()(torch.zeros(2, 4), torch.zeros(2, 1, 4), torch.zeros(2, 0, 4))
