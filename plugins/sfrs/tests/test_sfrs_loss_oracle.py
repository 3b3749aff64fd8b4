"""SFRSLoss against OpenIBL's SFRSTrainer._forward (losses_openibl.npz, cases ``sfrs__*``).

The oracle's total is ``hard + 0.5 * soft`` in every generation (the trainer's own weight is 0 in
generation 0, which ``forward`` applies; tested here separately), so the oracle is compared with
:meth:`SFRSLoss.parts`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from vpr_bench_sfrs.loss import SFRSConfig, SFRSLoss, hard_negative_regions

CASES = [
    ("sare_ind", 0),
    ("sare_ind", 1),
    ("sare_ind", 2),
    ("sare_ind", 3),
    ("sare_joint", 0),
    ("sare_joint", 1),
    ("triplet", 0),
    ("triplet", 2),
]
OUTPUTS = (
    "loss_hard",
    "loss_soft",
    "loss_total",
    "grad_hard_vlad_anchors",
    "grad_hard_vlad_pairs",
    "grad_soft_sim_diff",
)


@pytest.fixture(scope="module")
def oracle(oracles_dir: Path) -> dict[str, np.ndarray]:
    with np.load(oracles_dir / "losses_openibl.npz") as npz:
        return {k.removeprefix("sfrs__"): npz[k] for k in npz.files if k.startswith("sfrs__")}


def _inputs(
    oracle: dict[str, np.ndarray], dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    def tensor(name: str) -> torch.Tensor:
        return torch.from_numpy(oracle[name]).to(dtype)

    anchors = tensor("vlad_anchors")[:, 0]  # (B, 1, R, L) -> [B, R, L]
    sim_diff = tensor("sim_diff")
    mask = torch.ones(sim_diff.shape[:2], dtype=torch.bool)  # the oracle's tuples are full
    return anchors, tensor("vlad_pairs"), sim_diff, tensor("sim_diff_label"), mask


def _run(
    oracle: dict[str, np.ndarray], hard: str, generation: int, dtype: torch.dtype
) -> dict[str, np.ndarray]:
    anchors, pairs, sim_diff, teacher, mask = _inputs(oracle, dtype)
    for leaf in (anchors, pairs, sim_diff):
        leaf.requires_grad_(True)
    loss = SFRSLoss(SFRSConfig(hard=hard.replace("_", "-")))
    loss_hard, loss_soft = loss.parts(anchors, pairs, sim_diff, teacher, mask, generation)
    grad_anchors, grad_pairs = torch.autograd.grad(loss_hard, (anchors, pairs))
    (grad_sim,) = torch.autograd.grad(loss_soft, sim_diff)
    values = {
        "loss_hard": loss_hard,
        "loss_soft": loss_soft,
        "loss_total": loss_hard + float(oracle["lambda_soft"]) * loss_soft,
        "grad_hard_vlad_anchors": grad_anchors[:, None],
        "grad_hard_vlad_pairs": grad_pairs,
        "grad_soft_sim_diff": grad_sim,
    }
    return {k: v.detach().double().numpy() for k, v in values.items()}


def test_the_oracle_settings_are_the_defaults(oracle: dict[str, np.ndarray]) -> None:
    config = SFRSConfig()
    np.testing.assert_array_equal(oracle["temps"], config.temperatures)
    assert float(oracle["lambda_soft"]) == config.soft_weight
    # OpenIBL passes --margin 0.1 and uses its square root; loss.margin is that root.
    assert float(oracle["margin"]) == config.margin == pytest.approx(0.1**0.5, rel=1e-15)
    assert config.hard == "sare-ind"


@pytest.mark.parametrize(("hard", "generation"), CASES)
def test_float64_matches_openibl(oracle: dict[str, np.ndarray], hard: str, generation: int) -> None:
    ours = _run(oracle, hard, generation, torch.float64)
    for name in OUTPUTS:
        expected = oracle[f"{hard}_gen{generation}__{name}"]
        np.testing.assert_allclose(ours[name], expected, rtol=1e-8, atol=1e-9, err_msg=name)


@pytest.mark.parametrize(("hard", "generation"), CASES)
def test_float32_within_the_readme_limits(
    oracle: dict[str, np.ndarray], hard: str, generation: int
) -> None:
    ours = _run(oracle, hard, generation, torch.float32)
    for name in OUTPUTS:
        expected = oracle[f"{hard}_gen{generation}__{name}"]
        atol = 2e-5 * max(1.0, float(np.abs(expected).max()))  # README "Tolerances", float32
        np.testing.assert_allclose(ours[name], expected, rtol=0, atol=atol, err_msg=name)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_hard_regions_match_openibl(oracle: dict[str, np.ndarray], dtype: torch.dtype) -> None:
    anchors, pairs, *_ = _inputs(oracle, dtype)
    chosen = hard_negative_regions(anchors, pairs)
    assert chosen.dtype == torch.int64
    np.testing.assert_array_equal(chosen.numpy(), oracle["hard_region_idx"])


def test_hard_regions_are_the_argmax_of_the_stored_similarities(
    oracle: dict[str, np.ndarray],
) -> None:
    # OpenIBL takes them from the model's sim_easy (anchor global vs each negative's regions).
    expected = oracle["sim_easy"][:, 1:, 0].argmax(axis=2)
    np.testing.assert_array_equal(expected, oracle["hard_region_idx"])


@pytest.mark.parametrize(("hard", "generation"), CASES)
def test_forward_weights_the_soft_term_by_generation(
    oracle: dict[str, np.ndarray], hard: str, generation: int
) -> None:
    loss = SFRSLoss(SFRSConfig(hard=hard.replace("_", "-")))
    inputs = _inputs(oracle, torch.float64)
    total = float(loss(*inputs, generation))
    prefix = f"{hard}_gen{generation}__"
    if generation == 0:  # OpenIBL: lambda_soft = 0 in generation 0 (netvlad_img_sfrs.py:207)
        assert total == pytest.approx(float(oracle[prefix + "loss_hard"]), rel=1e-12)
    else:
        assert total == pytest.approx(float(oracle[prefix + "loss_total"]), rel=1e-12)


def test_generation_zero_still_builds_the_soft_graph(oracle: dict[str, np.ndarray]) -> None:
    # The soft term is computed and multiplied by 0 (methods.md O-8): sim_diff gets a zero
    # gradient, not none, and the hard gradient is unchanged.
    anchors, pairs, sim_diff, teacher, mask = _inputs(oracle, torch.float64)
    sim_diff.requires_grad_(True)
    anchors.requires_grad_(True)
    SFRSLoss()(anchors, pairs, sim_diff, teacher, mask, 0).backward()
    assert sim_diff.grad is not None and not sim_diff.grad.any()
    expected = oracle["sare_ind_gen0__grad_hard_vlad_anchors"][:, 0]
    assert anchors.grad is not None
    np.testing.assert_allclose(anchors.grad.numpy(), expected, rtol=1e-8, atol=1e-9)
