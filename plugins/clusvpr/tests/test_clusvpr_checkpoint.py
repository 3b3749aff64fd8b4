"""Checkpoints of ClusVPR's own code, synthesised from its state-dict manifest, load strictly.

ClusVPR saves ``{'state_dict': DDP(model).state_dict(), 'epoch', 'generation', 'best_recall5'}``
(``train_clusvpr.py:232-237``, methods.md 8.4), every key with DDP's ``module.`` prefix. The
model's own names are the manifest's ``entries``, so the harness's ``--weights`` path
(:func:`vpr_bench.weights.load_weights_file`, state-dict layout, prefixes stripped) reads such a
file with no loader of its own. No weights were ever released, so the file is built here with
the manifest's names and shapes (the paper's sizes: the manifest has no others).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch

from vpr_bench.errors import DataError
from vpr_bench.testing import isolated_manager
from vpr_bench.weights import STATE_DICT_LOADER, load_weights_file
from vpr_bench_clusvpr.config import ClusVPRConfig
from vpr_bench_clusvpr.model import ClusVPRModel, build_clusvpr

PLUGINS = ("vpr_bench_netvlad.plugin", "vpr_bench_sfrs.plugin", "vpr_bench_clusvpr.plugin")


def _manifest(oracles_dir: Path) -> dict[str, Any]:
    return json.loads((oracles_dir / "manifest_clusvpr.json").read_text())  # type: ignore[no-any-return]


def _random_state(entries: list[dict[str, Any]], seed: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    for entry in entries:
        shape = tuple(entry["shape"])
        if entry["dtype"] == "int64":
            state[entry["name"]] = torch.tensor(7, dtype=torch.int64).reshape(shape)
            continue
        if entry["name"].endswith("running_var"):
            state[entry["name"]] = torch.rand(shape, generator=gen) + 0.5
            continue
        fan_in = math.prod(shape[1:]) if len(shape) > 1 else 1
        scale = math.sqrt(2.0 / fan_in) if len(shape) > 1 else 0.1
        state[entry["name"]] = torch.randn(shape, generator=gen) * scale
    return state


@pytest.fixture(scope="module")
def model() -> ClusVPRModel:
    return build_clusvpr(ClusVPRConfig(pretrained=None))


@pytest.fixture(scope="module")
def checkpoint(
    oracles_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, torch.Tensor]]:
    state = _random_state(_manifest(oracles_dir)["entries_with_module_prefix"], seed=1)
    path = tmp_path_factory.mktemp("ckpt") / "model_best.pth.tar"
    torch.save({"state_dict": state, "epoch": 4, "generation": 3, "best_recall5": 0.95}, path)
    return path, state


def test_manifest_config_is_the_default_config(oracles_dir: Path) -> None:
    manifest, config = _manifest(oracles_dir)["config"], ClusVPRConfig()
    assert (manifest["num_clusters"], manifest["dim"]) == (config.num_clusters, config.local_dim)
    assert (manifest["expansion"], manifest["group"]) == (config.expansion, config.groups)
    assert (manifest["H"], manifest["W"]) == (config.map_height, config.map_width)
    assert manifest["cwt_hidden_size"] == config.local_dim // 2
    assert (manifest["cwt_mlp_dim"], manifest["cwt_num_heads"]) == (512, 2)
    assert (manifest["cwt_mlp_dim"], manifest["cwt_num_heads"]) == (
        config.cwt_mlp_dim,
        config.cwt_heads,
    )
    assert (manifest["cwt_num_layers"], manifest["knn_k"]) == (config.cwt_layers, config.knn_k)


def test_model_keys_are_the_manifest_entries_in_order(
    oracles_dir: Path, model: ClusVPRModel
) -> None:
    manifest = _manifest(oracles_dir)
    ours = [
        (k, tuple(v.shape), str(v.dtype).removeprefix("torch."))
        for k, v in model.state_dict().items()
    ]
    theirs = [(e["name"], tuple(e["shape"]), e["dtype"]) for e in manifest["entries"]]
    assert ours == theirs
    assert len(ours) == manifest["n_entries"] == 150
    assert sum(v.numel() for v in model.state_dict().values()) == manifest["n_values"]
    assert model.descriptor_dim == 8192


def test_a_file_of_the_original_code_loads_through_weights(
    checkpoint: tuple[Path, dict[str, torch.Tensor]], model: ClusVPRModel
) -> None:
    path, state = checkpoint
    method = isolated_manager(PLUGINS).registries().methods.get("clusvpr")
    loaded = load_weights_file(model, path, method=method)
    assert loaded.loader == STATE_DICT_LOADER and loaded.pca is None
    ours = model.state_dict()
    for name, tensor in state.items():
        torch.testing.assert_close(ours[name.removeprefix("module.")], tensor, rtol=0, atol=0)
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 64, 96, generator=torch.Generator().manual_seed(2)))
    assert out.shape == (1, 8192) and torch.isfinite(out).all()
    torch.testing.assert_close(out.norm(dim=1), torch.ones(1))


@pytest.mark.parametrize(
    ("clusters", "group_dim", "expected"),
    [
        (
            32,
            128,
            "net_vlad.centroids: file (32, 128) vs model (64, 128); "
            "net_vlad.conv.weight: file (32, 128, 1, 1) vs model (64, 128, 1, 1)",
        ),
        (
            64,
            256,
            "net_vlad.centroids: file (64, 256) vs model (64, 128); "
            "net_vlad.conv.weight: file (64, 256, 1, 1) vs model (64, 128, 1, 1)",
        ),
    ],
    ids=["K32", "4-groups"],
)
def test_a_file_of_another_k_or_group_count_is_refused_with_its_shapes(
    checkpoint: tuple[Path, dict[str, torch.Tensor]],
    model: ClusVPRModel,
    tmp_path: Path,
    clusters: int,
    group_dim: int,
    expected: str,
) -> None:
    _, state = checkpoint
    other = dict(state)
    other["module.net_vlad.centroids"] = torch.zeros(clusters, group_dim)
    other["module.net_vlad.conv.weight"] = torch.zeros(clusters, group_dim, 1, 1)
    del other["module.net_vlad.vit_layer.3.global_bn.bias"]
    path = tmp_path / "other.pth.tar"
    torch.save({"state_dict": other, "epoch": 0, "generation": 0}, path)
    method = isolated_manager(PLUGINS).registries().methods.get("clusvpr")
    with pytest.raises(DataError) as info:
        load_weights_file(model, path, method=method)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    assert "missing keys: net_vlad.vit_layer.3.global_bn.bias" in message
    assert f"shape mismatches: {expected}" in message
    assert "method clusvpr declares no loader" in message
