"""The aggregator against ClusVPR's own code (clusvpr.npz: eval mode at the oracle's small sizes).

The reference ran ``ClusVPR`` + ``EmbedNet`` (``clusvpr/models/clusvpr.py``, ``cwt.py``) in
float64 with the constants of ``config_json`` and a seeded random state dict (``sd__*``); every
output it stored is compared here in float64 (rtol 1e-8, atol 1e-9) and float32 (the oracle
README's limit, ``atol = 2e-5 * max(1, max|ref|)``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from vpr_bench_clusvpr.aggregator import ClusVPR
from vpr_bench_clusvpr.cwt import CWTNet, cluster_value_scale
from vpr_bench_clusvpr.model import normalise_vlad

DTYPES = [pytest.param(torch.float64, id="f64"), pytest.param(torch.float32, id="f32")]


@pytest.fixture(scope="module")
def oracle(oracles_dir: Path) -> dict[str, Any]:
    with np.load(oracles_dir / "clusvpr.npz") as npz:
        return {k: npz[k] for k in npz.files}


def _config(oracle: dict[str, Any]) -> dict[str, int]:
    return json.loads(str(oracle["config_json"]))  # type: ignore[no-any-return]


def _close(actual: torch.Tensor, expected: np.ndarray, dtype: torch.dtype, name: str) -> float:
    value = actual.detach().double().numpy()
    assert value.shape == expected.shape, name
    if dtype == torch.float64:
        np.testing.assert_allclose(value, expected, rtol=1e-8, atol=1e-9, err_msg=name)
    else:
        atol = 2e-5 * max(1.0, float(np.abs(expected).max()))
        np.testing.assert_allclose(value, expected, rtol=0, atol=atol, err_msg=name)
    return float(np.abs(value - expected).max())


def _aggregator(oracle: dict[str, Any], dtype: torch.dtype) -> ClusVPR:
    cfg = _config(oracle)
    layer = ClusVPR(
        dim=cfg["dim"],
        num_clusters=cfg["K"],
        expansion=cfg["expansion"],
        groups=cfg["G"],
        map_size=(cfg["H"], cfg["W"]),
        blocks=4,
        mlp_dim=cfg["mlp"],
        heads=cfg["heads"],
        layers=cfg["num_layers"],
        knn_k=cfg["k_nn"],
    )
    state = {str(n): torch.from_numpy(oracle[f"sd__{n}"]) for n in oracle["sd_names"]}
    layer = layer.to(dtype)
    layer.load_state_dict(state, strict=True)
    return layer.eval()


def test_the_oracle_sizes_are_the_reference_module_scaled_down(oracle: dict[str, Any]) -> None:
    cfg = _config(oracle)
    assert cfg["hidden"] == cfg["dim"] // 2  # the token width is always half the channels
    assert cfg["dim_g"] == cfg["expansion"] * cfg["dim"] // cfg["G"]
    assert (cfg["sample_rate"], cfg["k_nn"]) == (2, 10)


def test_state_dict_names_and_order_are_the_references(oracle: dict[str, Any]) -> None:
    layer = _aggregator(oracle, torch.float64)
    assert list(layer.state_dict()) == [str(n) for n in oracle["sd_names"]]
    for name, tensor in layer.state_dict().items():
        assert tuple(tensor.shape) == oracle[f"sd__{name}"].shape, name


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_block_output(oracle: dict[str, Any], dtype: torch.dtype) -> None:
    layer = _aggregator(oracle, dtype)
    x = torch.from_numpy(oracle["x"]).to(dtype)
    with torch.no_grad():
        for index, block in enumerate(layer.vit_layer):
            x = block(x)
            _close(x, oracle[f"cwtnet{index}_out"], dtype, f"cwtnet{index}_out")
        _close(
            layer.run_blocks(torch.from_numpy(oracle["x"]).to(dtype)),
            oracle["vit_out"],
            dtype,
            "vit_out",
        )


@pytest.mark.parametrize("dtype", DTYPES)
def test_cluster_value_scale_of_every_block(oracle: dict[str, Any], dtype: torch.dtype) -> None:
    layer = _aggregator(oracle, dtype)
    x = torch.from_numpy(oracle["x"]).to(dtype)
    with torch.no_grad():
        for index, block in enumerate(layer.vit_layer):
            assert isinstance(block, CWTNet)
            tokens = block.global_cwt.tokens(x[:, block.branch_dim :])
            scale = cluster_value_scale(tokens, _config(oracle)["k_nn"])
            expected = oracle["cluster_value_scale"][index]
            _close(scale, expected, dtype, f"cluster_value_scale[{index}]")
            assert float(scale.min()) == pytest.approx(0.5) and float(scale.max()) == pytest.approx(
                1.5
            )
            x = block(x)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gem_vlad_and_descriptor(oracle: dict[str, Any], dtype: torch.dtype) -> None:
    cfg = _config(oracle)
    layer = _aggregator(oracle, dtype)
    x = torch.from_numpy(oracle["x"]).to(dtype)
    with torch.no_grad():
        groups = layer.group_vectors(torch.from_numpy(oracle["vit_out"]).to(dtype))
        gem = layer.gem(groups, cfg["H"], cfg["W"])
        vlad = layer(x)
    _close(gem[:, :, None, :], oracle["gem_out"], dtype, "gem_out")
    _close(vlad, oracle["vlad_raw"], dtype, "vlad_raw")
    _close(normalise_vlad(vlad), oracle["desc"], dtype, "desc")


def test_the_input_is_left_unchanged(oracle: dict[str, Any]) -> None:
    # The reference adds the transformer branch in place into a view of its input
    # (cwt.py:285): x_after_forward. Ours leaves x as it was.
    layer = _aggregator(oracle, torch.float64)
    x = torch.from_numpy(oracle["x"]).clone()
    with torch.no_grad():
        layer(x)
    np.testing.assert_array_equal(x.numpy(), oracle["x"])
    assert not np.array_equal(oracle["x_after_forward"], oracle["x"])  # the reference's did


@pytest.mark.parametrize("dtype", DTYPES)
def test_initialisation_from_clusters(oracle: dict[str, Any], dtype: torch.dtype) -> None:
    cfg = _config(oracle)
    layer = ClusVPR(
        dim=cfg["dim"], num_clusters=cfg["K"], groups=cfg["G"], map_size=(cfg["H"], cfg["W"])
    ).to(dtype)
    layer.init_from_clusters(oracle["clsts"], oracle["traindescs"])
    assert layer.alpha == pytest.approx(float(oracle["alpha"]), rel=1e-12)
    _close(layer.centroids, oracle["sd__centroids"], dtype, "centroids")
    _close(layer.conv.weight, oracle["sd__conv.weight"], dtype, "conv.weight")
