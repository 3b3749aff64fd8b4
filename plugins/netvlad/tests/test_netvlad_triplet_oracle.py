"""The harness's triplet loss against OpenIBL's Trainer._get_loss (losses_openibl.npz)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from vpr_bench.train import TripletConfig, TripletLoss


def test_triplet_loss_and_gradient_match_openibl(oracles_dir: Path) -> None:
    with np.load(oracles_dir / "losses_openibl.npz") as npz:
        desc_np = npz["base__desc"]
        margin = float(npz["base__margin"])
        n_active = int(npz["base__n_active_triplets"])
        expected_loss = float(npz["base__triplet__loss"])
        expected_grad = npz["base__triplet__grad_desc"]
    assert margin == TripletConfig().margin  # the harness default is OpenIBL's sqrt(0.1)
    desc = torch.from_numpy(desc_np).requires_grad_(True)
    loss = TripletLoss(TripletConfig(margin=margin))(desc[:, 0], desc[:, 1:2], desc[:, 2:])
    loss.backward()
    np.testing.assert_allclose(float(loss.detach()), expected_loss, rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(desc.grad.numpy(), expected_grad, rtol=1e-8, atol=1e-9)  # type: ignore[union-attr]
    # Only hinges above zero carry gradient: as many negatives with a gradient as active triplets.
    assert int((desc.grad[:, 2:].abs().sum(-1) > 0).sum()) == n_active  # type: ignore[index]
