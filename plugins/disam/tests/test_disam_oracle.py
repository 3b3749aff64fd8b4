"""DISAM's latent losses, Grad-SAM and retrieval distances against ``disam.npz`` (README §8)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from vpr_bench_disam.loss import DisamLoss, DisamLossConfig
from vpr_bench_disam.metrics import distance_matrix, first_argmin, retrieval_distances
from vpr_bench_disam.sam import sam_map, sam_weight

RTOL, ATOL = 1e-8, 1e-9
LATENTS = ("encA", "encB", "recA", "recB")
SCALARS = ("loss_triplet", "feature_distance", "feature_cos", "loss_sam", "loss_sam_triplet")
OURS = {
    "loss_triplet": "triplet",
    "feature_distance": "feature_distance",
    "feature_cos": "feature_cos",
    "loss_sam": "sam",
    "loss_sam_triplet": "sam_triplet",
}
CONFIGS = {
    "default": {},
    "fine": {"train_using_cos": True, "mean_cos": True, "cos_latent_with_l2": True},
}
SAM_PAIRS = {
    "A_vs_recA": ("latent_encA", "latent_recA"),
    "B_vs_recB": ("latent_encB", "latent_recB"),
    "A_vs_recB": ("latent_encA", "latent_recB"),
    "B_vs_recA": ("latent_encB", "latent_recA"),
}


@pytest.fixture(scope="module")
def oracle(oracles_dir: Path) -> dict[str, np.ndarray]:
    with np.load(oracles_dir / "disam.npz") as data:
        return {key: data[key] for key in data.files}


def _tensor(array: np.ndarray, grad: bool = False) -> torch.Tensor:
    return torch.tensor(array, dtype=torch.float64, requires_grad=grad)


def _config(oracle: dict[str, np.ndarray], cfg: str) -> DisamLossConfig:
    return DisamLossConfig(
        margin=float(oracle["margin"]),
        adapt=float(oracle["adapt"]),
        margin_sam=float(oracle["margin_sam_triplet"]),
        adapt_sam=float(oracle["adapt_sam_triplet"]),
        lambda_triplet=float(oracle["lambda_triplet"]),
        lambda_latent=float(oracle["lambda_latent"]),
        lambda_sam=float(oracle["lambda_sam"]),
        lambda_sam_triplet=float(oracle["lambda_sam_triplet"]),
        **CONFIGS[cfg],
    )


@pytest.mark.parametrize("cfg", sorted(CONFIGS))
@pytest.mark.parametrize("scalar", SCALARS)
@pytest.mark.parametrize("side", ("A", "B"))
def test_loss_terms_and_gradients(
    oracle: dict[str, np.ndarray], cfg: str, scalar: str, side: str
) -> None:
    latents = {name: _tensor(oracle[f"latent_{name}"], grad=True) for name in LATENTS}
    loss = DisamLoss(_config(oracle, cfg))
    terms = loss.terms(latents["encA"], latents["encB"], latents["recA"], latents["recB"])
    value = terms[f"{OURS[scalar]}_{side.lower()}"]
    key = f"{cfg}__{scalar}_{side}"
    np.testing.assert_allclose(value.item(), oracle[key], rtol=RTOL, atol=ATOL)
    grads = torch.autograd.grad(
        value, [latents[n] for n in LATENTS], allow_unused=True, retain_graph=True
    )
    for name, grad in zip(LATENTS, grads, strict=True):
        expected = oracle[f"{cfg}__grad_{scalar}_{side}__{name}"]
        got = np.zeros_like(expected) if grad is None else grad.numpy()
        np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL, err_msg=f"{key} d{name}")


@pytest.mark.parametrize("cfg", sorted(CONFIGS))
def test_latent_mses(oracle: dict[str, np.ndarray], cfg: str) -> None:
    latents = {name: _tensor(oracle[f"latent_{name}"]) for name in LATENTS}
    terms = DisamLoss(_config(oracle, cfg)).terms(*(latents[n] for n in LATENTS))
    got = [terms[k].item() for k in ("dn_a", "dp_a", "dn_b", "dp_b")]
    np.testing.assert_allclose(got, oracle[f"{cfg}__latent_mse_dnA_dpA_dnB_dpB"], RTOL, ATOL)


@pytest.mark.parametrize("pair", sorted(SAM_PAIRS))
def test_sam_maps(oracle: dict[str, np.ndarray], pair: str) -> None:
    query, reference = (_tensor(oracle[k]) for k in SAM_PAIRS[pair])
    for cfg in CONFIGS:
        np.testing.assert_allclose(
            sam_map(query, reference)[0].numpy(),
            oracle[f"{cfg}__sam_map_{pair}__input"],
            rtol=RTOL,
            atol=ATOL,
        )
        np.testing.assert_allclose(
            sam_map(reference, query)[0].numpy(),
            oracle[f"{cfg}__sam_map_{pair}__target"],
            rtol=RTOL,
            atol=ATOL,
        )


def test_sam_weight(oracle: dict[str, np.ndarray]) -> None:
    weight = sam_weight(_tensor(oracle["latent_encA"]), _tensor(oracle["latent_recA"]))[0]
    expected = oracle["sam_weight_A_given_recA"]
    np.testing.assert_allclose(
        weight[:, None, None].expand(expected.shape).numpy(), expected, rtol=RTOL, atol=ATOL
    )


def test_sam_weight_is_the_autograd_gradient(oracle: dict[str, np.ndarray]) -> None:
    """The closed form equals the reference's create_graph gradient, first and second order."""
    from vpr_bench_disam.metrics import mean_cos

    q = _tensor(oracle["latent_encB"], grad=True)
    r = _tensor(oracle["latent_recA"], grad=True)
    (auto,) = torch.autograd.grad(mean_cos(q, r).sum(), q, create_graph=True)
    auto_weight = auto.sum(dim=(2, 3))
    torch.testing.assert_close(sam_weight(q, r), auto_weight, rtol=1e-12, atol=1e-15)
    probe = torch.randn(
        auto_weight.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0)
    )
    ours = torch.autograd.grad((sam_weight(q, r) * probe).sum(), [q, r])
    theirs = torch.autograd.grad((auto_weight * probe).sum(), [q, r])
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize(
    ("name", "metric"), [("l2", "l2"), ("cos", "cos"), ("meancos", "mean-cos")]
)
def test_retrieval(oracle: dict[str, np.ndarray], name: str, metric: str) -> None:
    queries, database = _tensor(oracle["test_q_feat"]), _tensor(oracle["test_db_feat"])
    dist = retrieval_distances(queries, database, metric)
    np.testing.assert_allclose(dist.numpy(), oracle[f"retrieval_{name}__dist"], RTOL, ATOL)
    np.testing.assert_array_equal(first_argmin(dist).numpy(), oracle[f"retrieval_{name}__argmin"])


@pytest.mark.parametrize(("name", "metric"), [("cos", "cos"), ("meancos", "mean-cos")])
def test_distance_matrix(oracle: dict[str, np.ndarray], name: str, metric: str) -> None:
    queries, database = _tensor(oracle["test_q_feat"]), _tensor(oracle["test_db_feat"])
    dist = distance_matrix(queries, database, metric)
    np.testing.assert_allclose(dist.numpy(), oracle[f"distmat_{name}__dist"], RTOL, ATOL)
    np.testing.assert_array_equal(
        first_argmin(dist, dim=0).numpy(), oracle[f"distmat_{name}__argmin"]
    )


@pytest.mark.parametrize("cfg", sorted(CONFIGS))
def test_float32_within_the_readme_tolerance(oracle: dict[str, np.ndarray], cfg: str) -> None:
    """A float32 evaluation stays within README's 2e-5 * max(1, |ref|) of the float64 oracle."""
    latents = [torch.tensor(oracle[f"latent_{n}"], dtype=torch.float32) for n in LATENTS]
    terms = DisamLoss(_config(oracle, cfg)).terms(*latents)
    for scalar in SCALARS:
        for side in "AB":
            ref = float(oracle[f"{cfg}__{scalar}_{side}"])
            got = terms[f"{OURS[scalar]}_{side.lower()}"].item()
            assert abs(got - ref) <= 2e-5 * max(1.0, abs(ref)), (scalar, side, got, ref)
