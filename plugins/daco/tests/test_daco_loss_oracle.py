"""The five losses against DaCo's own code (``../shared/oracles/daco_losses.npz``, README §7).

float64, rtol 1e-8 / atol 1e-9 (the README's tolerance for float64 implementations); the NPID
draws are the oracle's own (``npid__idx_step*``), injected.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from vpr_bench_daco.losses import (
    DaCoLoss,
    DaCoLossConfig,
    MoCoConfig,
    MoCoLoss,
    NPIDConfig,
    NPIDLoss,
    SimCLRConfig,
    SimCLRLoss,
    SimSiamConfig,
    SimSiamLoss,
)

RTOL, ATOL = 1e-8, 1e-9


@pytest.fixture(scope="module")
def oracle(oracles_dir: Path) -> dict[str, np.ndarray]:
    with np.load(oracles_dir / "daco_losses.npz") as z:
        return {k: z[k] for k in z.files}


def _leaf(oracle: dict[str, np.ndarray], name: str) -> torch.Tensor:
    return torch.from_numpy(oracle[name]).clone().requires_grad_(True)


def _close(got: torch.Tensor, expected: np.ndarray, what: str) -> None:
    np.testing.assert_allclose(got.detach().numpy(), expected, rtol=RTOL, atol=ATOL, err_msg=what)


def test_oracle_settings_are_the_defaults(oracle: dict[str, np.ndarray]) -> None:
    assert (
        float(oracle["temperature"]) == SimCLRConfig().temperature == DaCoLossConfig().temperature
    )
    assert float(oracle["lamda"]) == DaCoLossConfig().lamda
    assert float(oracle["momentum"]) == NPIDConfig().momentum


def test_simclr(oracle: dict[str, np.ndarray]) -> None:
    p1, p2 = _leaf(oracle, "ori_proj_1"), _leaf(oracle, "ori_proj_2")
    loss = SimCLRLoss(SimCLRConfig(float(oracle["temperature"])))(torch.stack([p1, p2], dim=1))
    loss.backward()
    _close(loss, oracle["simclr__loss"], "loss")
    _close(p1.grad, oracle["simclr__grad_proj_1"], "grad 1")
    _close(p2.grad, oracle["simclr__grad_proj_2"], "grad 2")


def test_daco(oracle: dict[str, np.ndarray]) -> None:
    names = ("ori_proj_1", "ori_proj_2", "gen_proj_1", "gen_proj_2")
    leaves = [_leaf(oracle, n) for n in names]
    cfg = DaCoLossConfig(float(oracle["temperature"]), float(oracle["lamda"]))
    loss = DaCoLoss(cfg)(torch.stack(leaves, dim=1))
    loss.backward()
    _close(loss, oracle["daco__loss"], "loss")
    for name, leaf in zip(names, leaves, strict=True):
        _close(leaf.grad, oracle[f"daco__grad_{name}"], name)


def test_simsiam(oracle: dict[str, np.ndarray]) -> None:
    names = ("feature_1", "feature_2", "ori_proj_1", "ori_proj_2")
    leaves = [_leaf(oracle, n) for n in names]
    loss = SimSiamLoss(SimSiamConfig())(torch.stack(leaves, dim=1))
    loss.backward()
    _close(loss, oracle["simsiam__loss"], "loss")
    for key, leaf in zip(("feature_1", "feature_2", "proj_1", "proj_2"), leaves, strict=True):
        grad = leaf.grad if leaf.grad is not None else torch.zeros_like(leaf)
        _close(grad, oracle[f"simsiam__grad_{key}"], key)


def test_moco_loss_gradients_and_queue(oracle: dict[str, np.ndarray]) -> None:
    queue = torch.from_numpy(oracle["moco_queue"])
    negs, dim = queue.shape
    moco = MoCoLoss(MoCoConfig(float(oracle["temperature"]), negs, dim))
    moco.queue = queue.clone()
    q, k = _leaf(oracle, "ori_proj_1"), _leaf(oracle, "ori_proj_2")
    loss = moco(torch.stack([q, k], dim=1))
    loss.backward()
    _close(loss, oracle["moco__loss"], "loss")
    _close(q.grad, oracle["moco__grad_query"], "grad query")
    _close(k.grad, oracle["moco__grad_key"], "grad key")
    moco.enqueue(k)
    _close(moco.queue, oracle["moco__queue_after"], "queue after")


def test_npid_two_steps_with_the_oracle_draws(oracle: dict[str, np.ndarray]) -> None:
    bank = torch.from_numpy(oracle["npid_bank"])
    n, dim = bank.shape
    negs = oracle["npid__idx_step1"].shape[1] - 1
    npid = NPIDLoss(NPIDConfig(float(oracle["temperature"]), negs, dim, float(oracle["momentum"])))
    npid.bank = bank.clone()
    items = torch.from_numpy(oracle["npid_pos_index"])
    for step in (1, 2):
        idx = torch.from_numpy(oracle[f"npid__idx_step{step}"])
        assert (idx[:, 0] == items).all()
        proj = _leaf(oracle, f"npid_proj_step{step}")
        loss, pos_samples = npid.nce(proj, items, sample_idx=idx)
        loss.backward()
        prefix = f"npid__step{step}_"
        _close(loss, oracle[prefix + "loss"], f"step {step} loss")
        _close(proj.grad, oracle[prefix + "grad_proj"], f"step {step} grad")
        np.testing.assert_allclose(float(npid.z), float(oracle[prefix + "z"]), rtol=RTOL)
        _close(pos_samples, oracle[prefix + "pos_samples"], f"step {step} pos samples")
        npid.enqueue(proj, items, pos_samples)
        _close(npid.bank, oracle[prefix + "bank_after"], f"step {step} bank")
    assert n == npid.n


def test_npid_forward_defaults_and_draws() -> None:
    npid = NPIDLoss(NPIDConfig(negs=5, dim=4, bank_size=10))
    items = torch.tensor([3, 7])
    torch.manual_seed(0)
    idx = npid.draw(items)
    assert idx.shape == (2, 6) and (idx[:, 0] == items).all() and idx.max() < 10
    views = torch.nn.functional.normalize(torch.randn(2, 1, 4), dim=-1)
    first = npid(views)
    z = float(npid.z)
    npid(views)
    assert float(npid.z) == z and torch.isfinite(first)  # z is fixed by the first call
    npid.reset_bank(12)
    assert npid.n == 12 and torch.isnan(npid.z)
