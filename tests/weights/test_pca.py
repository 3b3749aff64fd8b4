"""PCA-whitening against the OpenIBL oracle (pca_openibl.npz) and its file formats."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from vpr_bench.errors import DataError, UsageError
from vpr_bench.weights import PcaWhitening, fit_pca, safe_load

CASES = ("primal", "dual", "full")


@pytest.fixture(scope="module")
def oracle(shared_oracles: Path) -> dict[str, np.ndarray]:
    with np.load(shared_oracles / "pca_openibl.npz") as z:
        return {k: z[k] for k in z.files}


def _case(oracle: dict[str, np.ndarray], case: str) -> dict[str, np.ndarray]:
    ref = {k.split("__", 1)[1]: v for k, v in oracle.items() if k.startswith(case + "__")}
    if case == "full":
        # OpenIBL keeps ascending order when k equals the problem size (methods.md O-1); we
        # always sort descending, so the oracle's components are reversed for the comparison.
        for key in ("U", "weight", "weight_nowhiten"):
            axis = 1 if key == "U" else 0
            ref[key] = np.flip(ref[key], axis=axis)
        for key in ("lams", "Utmu", "bias", "bias_nowhiten"):
            ref[key] = np.flip(ref[key], axis=0)
        for key in ("out", "out_nowhiten"):
            ref[key] = np.flip(ref[key], axis=1)
    return ref


def _signs(u_impl: np.ndarray, u_ref: np.ndarray) -> np.ndarray:
    signs = np.sign(np.sum(u_impl * u_ref, axis=0))
    assert np.all(signs != 0)
    return signs


@pytest.mark.parametrize("case", CASES)
def test_fit_matches_oracle_float64(oracle: dict[str, np.ndarray], case: str) -> None:
    ref = _case(oracle, case)
    k = int(ref["n_components"])
    pca = fit_pca(ref["train_x"], k, whiten=True)
    u = pca.U.numpy()
    s = _signs(u, ref["U"])
    tol = {"rtol": 1e-8, "atol": 1e-9}
    np.testing.assert_allclose(u * s, ref["U"], **tol)
    np.testing.assert_allclose(pca.lams.numpy(), ref["lams"], **tol)
    np.testing.assert_allclose(pca.mu.numpy(), ref["mu"][:, 0], **tol)
    np.testing.assert_allclose((u.T @ pca.mu.numpy()) * s, ref["Utmu"][:, 0], **tol)
    np.testing.assert_allclose(pca.weight.numpy() * s[:, None], ref["weight"], **tol)
    np.testing.assert_allclose(pca.bias.numpy() * s, ref["bias"], **tol)
    np.testing.assert_allclose(pca.apply(ref["test_x"]) * s, ref["out"], **tol)

    plain = fit_pca(ref["train_x"], k, whiten=False)
    s2 = _signs(plain.U.numpy(), ref["U"])
    np.testing.assert_allclose(plain.weight.numpy() * s2[:, None], ref["weight_nowhiten"], **tol)
    np.testing.assert_allclose(plain.bias.numpy() * s2, ref["bias_nowhiten"], **tol)
    np.testing.assert_allclose(plain.apply(ref["test_x"]) * s2, ref["out_nowhiten"], **tol)


def test_full_case_reversal_keeps_distances(oracle: dict[str, np.ndarray]) -> None:
    """The ascending-order quirk only permutes coordinates: distances equal the raw oracle's."""
    ref = {k.split("__", 1)[1]: v for k, v in oracle.items() if k.startswith("full__")}
    out = fit_pca(ref["train_x"], int(ref["n_components"])).apply(ref["test_x"])
    ours = np.linalg.norm(out[:, None] - out[None], axis=-1)
    theirs = np.linalg.norm(ref["out"][:, None] - ref["out"][None], axis=-1)
    np.testing.assert_allclose(ours, theirs, rtol=1e-8, atol=1e-9)


@pytest.mark.parametrize("case", CASES)
def test_fit_float32_within_readme_tolerance(oracle: dict[str, np.ndarray], case: str) -> None:
    ref = _case(oracle, case)
    x32 = torch.from_numpy(ref["train_x"].astype(np.float32))
    pca = fit_pca(x32, int(ref["n_components"]))
    assert pca.U.dtype == torch.float32
    out = pca.apply(torch.from_numpy(ref["test_x"].astype(np.float32)))
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    s = _signs(pca.U.double().numpy(), ref["U"])
    np.testing.assert_allclose(out.double().numpy() * s, ref["out"], atol=5e-4, rtol=0)
    np.testing.assert_allclose(
        pca.weight.double().numpy() * s[:, None], ref["weight"], atol=5e-4 * 10, rtol=1e-3
    )


def test_dual_eigenvalues_are_clamped() -> None:
    """With k = N the centred Gram matrix has a zero eigenvalue; it is clamped to 1e-9."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 20))
    pca = fit_pca(x, 6)
    assert pca.lams[-1].item() == pytest.approx(1e-9)
    assert torch.all(pca.lams[:-1] > 1e-3)
    assert torch.all(pca.lams[:-1] >= pca.lams[1:])


def test_apply_chunked_equals_one_block(oracle: dict[str, np.ndarray]) -> None:
    ref = _case(oracle, "primal")
    pca = fit_pca(ref["train_x"], int(ref["n_components"]))
    # BLAS may block a 3-row matmul differently: equal up to float64 rounding.
    np.testing.assert_allclose(
        pca.apply(ref["test_x"], chunk_rows=3),
        pca.apply(ref["test_x"], chunk_rows=1000),
        rtol=0,
        atol=1e-14,
    )
    norms = np.linalg.norm(pca.apply(ref["test_x"]), axis=1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-12)


def test_h5_round_trip_openibl_layout(oracle: dict[str, np.ndarray], tmp_path: Path) -> None:
    ref = _case(oracle, "dual")
    pca = fit_pca(ref["train_x"].astype(np.float32), int(ref["n_components"]))
    path = pca.save_h5(tmp_path / "sub" / "pca_params_model_best.h5")
    assert sorted(p.name for p in path.parent.iterdir()) == ["pca_params_model_best.h5"]
    with h5py.File(path, "r") as f:
        assert f["U"].shape == (64, 24) and f["U"].dtype == np.float32
        assert f["lams"].shape == (24,)
        assert f["mu"].shape == (64, 1)
        assert f["Utmu"].shape == (24, 1)
        np.testing.assert_allclose(f["Utmu"][()], f["U"][()].T @ f["mu"][()], rtol=1e-6)
    loaded = PcaWhitening.load_h5(path)
    test_x = ref["test_x"].astype(np.float32)
    np.testing.assert_array_equal(loaded.apply(test_x), pca.apply(test_x))
    small = PcaWhitening.load_h5(path, n_components=8, whiten=False)
    assert small.n_components == 8 and not small.whiten
    torch.testing.assert_close(small.U, pca.U[:, :8])


def test_h5_reads_oracle_arrays_written_like_openibl(
    oracle: dict[str, np.ndarray], tmp_path: Path
) -> None:
    """A file laid out as OpenIBL writes it gives the oracle's weight, bias and output."""
    ref = _case(oracle, "primal")
    path = tmp_path / "openibl.h5"
    with h5py.File(path, "w") as f:
        for key in ("U", "lams", "mu", "Utmu"):
            f.create_dataset(key, data=ref[key])
    pca = PcaWhitening.load_h5(path)
    np.testing.assert_allclose(pca.weight.numpy(), ref["weight"], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(pca.bias.numpy(), ref["bias"], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(pca.apply(ref["test_x"]), ref["out"], rtol=1e-10, atol=1e-12)


def test_state_dict_round_trip_through_torch_save(tmp_path: Path) -> None:
    pca = fit_pca(np.random.default_rng(1).standard_normal((30, 10)), 4, whiten=False)
    torch.save(pca.state_dict(), tmp_path / "pca.pt")
    back = PcaWhitening.from_state_dict(safe_load(tmp_path / "pca.pt"))  # type: ignore[arg-type]
    assert not back.whiten
    torch.testing.assert_close(back.weight, pca.weight)
    torch.testing.assert_close(back.bias, pca.bias)


def test_bad_inputs_raise_clear_errors(tmp_path: Path) -> None:
    x = np.zeros((5, 8))
    with pytest.raises(UsageError, match="between 1 and 5"):
        fit_pca(x, 6)
    with pytest.raises(UsageError, match="2-D"):
        fit_pca(np.zeros(8), 2)
    with pytest.raises(UsageError, match="at least 2"):
        fit_pca(np.zeros((1, 8)), 1)
    bad = np.ones((5, 8))
    bad[0, 0] = np.nan
    with pytest.raises(UsageError, match="NaN"):
        fit_pca(bad, 2)
    pca = fit_pca(np.random.default_rng(2).standard_normal((10, 8)), 3)
    with pytest.raises(UsageError, match="dimension 7"):
        pca.apply(np.zeros((2, 7)))
    with pytest.raises(DataError, match="does not exist"):
        PcaWhitening.load_h5(tmp_path / "missing.h5")
    with h5py.File(tmp_path / "partial.h5", "w") as f:
        f.create_dataset("U", data=np.zeros((8, 3)))
    with pytest.raises(DataError, match=r"lacks datasets \['lams', 'mu'\]"):
        PcaWhitening.load_h5(tmp_path / "partial.h5")
    with pytest.raises(DataError, match="lacks"):
        PcaWhitening.from_state_dict({"U": torch.zeros(8, 3)})


def test_folded_projection_is_applied_exactly_like_a_1x1_conv(tmp_path: Path) -> None:
    # OpenIBL's hub release stores PCA as pca_layer (a 1x1 conv) after the flattened VLAD.
    gen = torch.Generator().manual_seed(0)
    weight, bias = torch.randn(3, 8, 1, 1, generator=gen), torch.randn(3, generator=gen)
    x = torch.randn(5, 8, generator=gen)
    folded = PcaWhitening.from_linear(weight, bias)
    conv = torch.nn.functional.conv2d(x[:, :, None, None], weight, bias).flatten(1)
    torch.testing.assert_close(folded.apply(x), torch.nn.functional.normalize(conv, dim=1))
    assert (folded.input_dim, folded.n_components) == (8, 3)
    torch.testing.assert_close(folded.truncated(2).bias, bias[:2])
    torch.save(folded.state_dict(), tmp_path / "folded.pt")
    back = PcaWhitening.from_state_dict(safe_load(tmp_path / "folded.pt"))  # type: ignore[arg-type]
    torch.testing.assert_close(back.apply(x), folded.apply(x))
    with pytest.raises(UsageError, match="cannot hold it"):
        folded.save_h5(tmp_path / "folded.h5")
    with pytest.raises(UsageError, match=r"offset must be \[3\], got \(2,\)"):
        PcaWhitening(folded.U, folded.lams, folded.mu, offset=torch.zeros(2))


def test_folding_a_fitted_pca_changes_nothing() -> None:
    data = np.random.default_rng(3).standard_normal((40, 12))
    pca = fit_pca(data, 5)
    folded = PcaWhitening.from_linear(pca.weight, pca.bias)
    np.testing.assert_allclose(folded.apply(data), pca.apply(data), rtol=1e-6, atol=1e-6)
