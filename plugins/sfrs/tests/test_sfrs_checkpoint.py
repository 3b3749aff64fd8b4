"""SFRS's OpenIBL files, synthesised in their exact layout from the reference's state_dict
manifest (manifest_openibl_vgg16_netvlad.json): the model-zoo training checkpoint and the hub
release."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch

from vpr_bench import resolve
from vpr_bench.errors import DataError
from vpr_bench_netvlad.config import NetVLADConfig
from vpr_bench_netvlad.model import NetVLADModel, build_netvlad
from vpr_bench_sfrs.checkpoint import load_sfrs_weights
from vpr_bench_sfrs.plugin import OPENIBL_SFRS, OPENIBL_SFRS_HUB

PCA_DIM = 8  # the release has 4096 rows (512 MiB); the loaders take any [P, K*D, 1, 1]


def _manifest(oracles_dir: Path) -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads(
        (oracles_dir / "manifest_openibl_vgg16_netvlad.json").read_text()
    )
    return manifest


def _random_state(entries: list[dict[str, Any]], seed: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    for entry in entries:
        shape = tuple(entry["shape"])
        if entry["name"].endswith("pca_layer.weight"):
            shape = (PCA_DIM, *shape[1:])
        elif entry["name"].endswith("pca_layer.bias"):
            shape = (PCA_DIM,)
        assert entry["dtype"] == "float32"
        scale = math.sqrt(2.0 / math.prod(shape[1:])) if len(shape) > 1 else 0.01
        state[entry["name"]] = torch.randn(shape, generator=gen) * scale
    return state


@pytest.fixture(scope="module")
def vgg_model() -> NetVLADModel:
    return build_netvlad(NetVLADConfig(backbone="vgg16", pretrained=None, seed=0))


@pytest.fixture(scope="module")
def training_state(oracles_dir: Path) -> dict[str, torch.Tensor]:
    """The ``state_dict`` of an OpenIBL training checkpoint (DDP keys, ``module.`` prefix)."""
    return _random_state(_manifest(oracles_dir)["EmbedNet"]["entries_with_module_prefix"], 1)


def _save_training_file(path: Path, state: dict[str, torch.Tensor], **meta: Any) -> Path:
    torch.save({"state_dict": state, "epoch": 4, "best_recall5": 0.9, **meta}, path)
    return path


def _ours(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {
        k.removeprefix("module.").replace("base_model.base.", "trunk.", 1): v
        for k, v in state.items()
    }


def test_sfrs_model_zoo_checkpoint_loads_strictly(
    tmp_path: Path, training_state: dict[str, torch.Tensor], vgg_model: NetVLADModel
) -> None:
    # netvlad_img_sfrs.py:219-224 saves the generation beside epoch and best_recall5.
    path = _save_training_file(tmp_path / "model_best.pth.tar", training_state, generation=3)
    assert resolve(OPENIBL_SFRS.load)(path, vgg_model) is None  # no PCA in a training file
    loaded = vgg_model.state_dict()
    for key, tensor in _ours(training_state).items():
        torch.testing.assert_close(loaded[key], tensor, rtol=0, atol=0)


def test_a_checkpoint_without_generation_is_refused(
    tmp_path: Path, training_state: dict[str, torch.Tensor], vgg_model: NetVLADModel
) -> None:
    # SARE's (or NetVLAD's) model_best.pth.tar: the same keys, no generation entry.
    path = _save_training_file(tmp_path / "model_best.pth.tar", training_state)
    before = {k: v.clone() for k, v in vgg_model.state_dict().items()}
    with pytest.raises(DataError) as info:
        load_sfrs_weights(path, vgg_model)
    message = str(info.value)
    assert "\n" not in message
    assert f"Checkpoint {path} has no 'generation' entry" in message
    assert "looks like a non-SFRS OpenIBL checkpoint" in message
    after = vgg_model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # refused before loading


def test_hub_release_loads_with_its_pca(
    oracles_dir: Path, tmp_path: Path, vgg_model: NetVLADModel
) -> None:
    state = _random_state(_manifest(oracles_dir)["EmbedNetPCA"]["entries"], seed=2)
    path = tmp_path / OPENIBL_SFRS_HUB.file_name
    torch.save(state, path)
    for load in (resolve(OPENIBL_SFRS_HUB.load), load_sfrs_weights):
        pca = load(path, vgg_model)
        assert pca is not None and (pca.input_dim, pca.n_components) == (32768, PCA_DIM)
        vlad = torch.nn.functional.normalize(
            torch.randn(2, 32768, generator=torch.Generator().manual_seed(3)), dim=1
        )
        weight, bias = state["pca_layer.weight"][:, :, 0, 0], state["pca_layer.bias"]
        expected = torch.nn.functional.normalize(vlad @ weight.T + bias, dim=1)
        torch.testing.assert_close(pca.apply(vlad), expected, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(
            vgg_model.net_vlad.centroids.detach(), state["net_vlad.centroids"], rtol=0, atol=0
        )


def test_a_bad_hub_pca_layer_is_one_clear_line(
    oracles_dir: Path, tmp_path: Path, vgg_model: NetVLADModel
) -> None:
    state = _random_state(_manifest(oracles_dir)["EmbedNetPCA"]["entries"], seed=4)
    state["pca_layer.weight"] = torch.zeros(PCA_DIM, 4096, 1, 1)  # not [P, 32768, 1, 1]
    path = tmp_path / "vgg16_netvlad.pth"
    torch.save(state, path)
    for load in (resolve(OPENIBL_SFRS_HUB.load), load_sfrs_weights):
        with pytest.raises(DataError) as info:
            load(path, vgg_model)
        message = str(info.value)
        assert "\n" not in message and str(path) in message
        assert "pca_layer: weight (8, 4096, 1, 1) and bias (8,) do not form a" in message


def test_other_models_and_missing_files_are_refused(
    tmp_path: Path, training_state: dict[str, torch.Tensor]
) -> None:
    from vpr_bench.models import TinyGeMConfig, build_tiny_gem

    path = _save_training_file(tmp_path / "model_best.pth.tar", training_state, generation=0)
    with pytest.raises(DataError, match="loads into the netvlad model only"):
        load_sfrs_weights(path, build_tiny_gem(TinyGeMConfig()))
    with pytest.raises(DataError, match="does not exist"):
        load_sfrs_weights(tmp_path / "nope.pth.tar", build_netvlad(NetVLADConfig(backbone="tiny")))
