"""ClusVPR's trainer loss through the SFRS plugin's loss (losses_openibl.npz, cases ``clus__*``).

ClusVPR's ``ClusVPRTrainer`` is OpenIBL's SFRS trainer renamed (methods.md 5); its oracle has 21
regions, 1 negative, 1 difficult positive and the script's temperatures 0.06/0.06/0.05/0.04.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from vpr_bench_clusvpr.plugin import PAPER_PROFILE
from vpr_bench_sfrs.loss import SFRSConfig, SFRSLoss, hard_negative_regions

OUTPUTS = (
    "loss_hard",
    "loss_soft",
    "loss_total",
    "grad_hard_vlad_anchors",
    "grad_hard_vlad_pairs",
    "grad_soft_sim_diff",
)
DTYPES = [pytest.param(torch.float64, id="f64"), pytest.param(torch.float32, id="f32")]


@pytest.fixture(scope="module")
def oracle(oracles_dir: Path) -> dict[str, np.ndarray]:
    with np.load(oracles_dir / "losses_openibl.npz") as npz:
        return {k.removeprefix("clus__"): npz[k] for k in npz.files if k.startswith("clus__")}


def _loss() -> SFRSLoss:
    return SFRSLoss(
        SFRSConfig(
            hard=PAPER_PROFILE["loss.hard"],
            temperatures=PAPER_PROFILE["loss.temperatures"],
            soft_weight=PAPER_PROFILE["loss.soft_weight"],
        )
    )


def _inputs(oracle: dict[str, np.ndarray], dtype: torch.dtype) -> list[torch.Tensor]:
    def tensor(name: str) -> torch.Tensor:
        return torch.from_numpy(oracle[name]).to(dtype)

    sim_diff = tensor("sim_diff")
    mask = torch.ones(sim_diff.shape[:2], dtype=torch.bool)
    return [
        tensor("vlad_anchors")[:, 0],
        tensor("vlad_pairs"),
        sim_diff,
        tensor("sim_diff_label"),
        mask,
    ]


def test_the_oracle_settings_are_the_paper_profile(oracle: dict[str, np.ndarray]) -> None:
    np.testing.assert_array_equal(oracle["temps"], PAPER_PROFILE["loss.temperatures"])
    assert float(oracle["lambda_soft"]) == PAPER_PROFILE["loss.soft_weight"]
    assert oracle["vlad_anchors"].shape[2] == 21  # ClusVPR's regions
    assert oracle["vlad_pairs"].shape[1] == 1 + PAPER_PROFILE["trainer.neg_num"]
    assert oracle["sim_diff"].shape[1] == PAPER_PROFILE["trainer.pos_num"]


@pytest.mark.parametrize("generation", [0, 1, 2, 3])
@pytest.mark.parametrize("dtype", DTYPES)
def test_losses_and_gradients(
    oracle: dict[str, np.ndarray], generation: int, dtype: torch.dtype
) -> None:
    anchors, pairs, sim_diff, teacher, mask = _inputs(oracle, dtype)
    for leaf in (anchors, pairs, sim_diff):
        leaf.requires_grad_(True)
    hard, soft = _loss().parts(anchors, pairs, sim_diff, teacher, mask, generation)
    grad_anchors, grad_pairs = torch.autograd.grad(hard, (anchors, pairs))
    (grad_sim,) = torch.autograd.grad(soft, sim_diff)
    ours = {
        "loss_hard": hard,
        "loss_soft": soft,
        "loss_total": hard + float(oracle["lambda_soft"]) * soft,
        "grad_hard_vlad_anchors": grad_anchors[:, None],
        "grad_hard_vlad_pairs": grad_pairs,
        "grad_soft_sim_diff": grad_sim,
    }
    for name in OUTPUTS:
        expected = oracle[f"sare_ind_gen{generation}__{name}"]
        value = ours[name].detach().double().numpy()
        if dtype == torch.float64:
            np.testing.assert_allclose(value, expected, rtol=1e-8, atol=1e-9, err_msg=name)
        else:
            atol = 2e-5 * max(1.0, float(np.abs(expected).max()))
            np.testing.assert_allclose(value, expected, rtol=0, atol=atol, err_msg=name)


@pytest.mark.parametrize("generation", [0, 1, 2, 3])
def test_forward_weights_the_soft_term_by_generation(
    oracle: dict[str, np.ndarray], generation: int
) -> None:
    total = float(_loss()(*_inputs(oracle, torch.float64), generation))
    key = "loss_hard" if generation == 0 else "loss_total"  # weight 0 in generation 0
    assert total == pytest.approx(float(oracle[f"sare_ind_gen{generation}__{key}"]), rel=1e-12)


def test_hard_negative_regions(oracle: dict[str, np.ndarray]) -> None:
    anchors, pairs, *_ = _inputs(oracle, torch.float64)
    np.testing.assert_array_equal(
        hard_negative_regions(anchors, pairs).numpy(), oracle["hard_region_idx"]
    )
