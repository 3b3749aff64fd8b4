"""The released-checkpoint loader on files synthesised in the authors' format."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from vpr_bench.errors import DataError
from vpr_bench.testing import isolated_manager
from vpr_bench_deattention.checkpoint import ARCHIVE_RUNS, load_deattention_weights, map_keys
from vpr_bench_deattention.config import DeAttentionConfig
from vpr_bench_deattention.model import build_deattention_netvlad

PLUGINS = ("vpr_bench_netvlad.plugin", "vpr_bench_deattention.plugin")


def _model(seed: int, **options: object) -> torch.nn.Module:
    cfg = DeAttentionConfig(backbone="tiny", num_clusters=8, pretrained=None, seed=seed, **options)
    return build_deattention_netvlad(cfg)


def _original_layout(state: dict[str, torch.Tensor], parallel: bool) -> dict[str, torch.Tensor]:
    """The keys the authors' train.py saves (old runs spell crn as crm)."""
    module = "module." if parallel else ""
    out = {}
    for key, value in state.items():
        key = key.replace("trunk.", f"encoder.{module}", 1).replace(
            "net_vlad.", f"pool.{module}", 1
        )
        out[key.replace("deattention.crn_", "deattention.crm_")] = value.clone()
    return out


def _payload(state: dict[str, torch.Tensor], parallel: bool = True) -> dict[str, object]:
    return {
        "epoch": 12,
        "state_dict": _original_layout(state, parallel),
        "recalls": {1: np.float64(0.903), 5: np.float64(0.967), 10: np.float32(0.98)},
        "best_score": np.float64(0.903),
        "optimizer": {"state": {}, "param_groups": [{"lr": 0.001, "params": [0, 1]}]},
        "parallel": parallel,
        "deatt_category_list": ["human", "vehicle", "sky"],
    }


def _assert_loaded(model: torch.nn.Module, source: torch.nn.Module) -> None:
    ours, theirs = model.state_dict(), source.state_dict()
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert torch.equal(ours[key], theirs[key]), key


@pytest.mark.parametrize("parallel", [True, False])
def test_model_best_file_loads_strictly(tmp_path: Path, parallel: bool) -> None:
    source = _model(1)
    path = tmp_path / "model_best.pth.tar"
    torch.save(_payload(source.state_dict(), parallel), path)
    target = _model(2)
    assert load_deattention_weights(path, target) is None
    _assert_loaded(target, source)


def test_the_release_archive_picks_the_models_run(tmp_path: Path) -> None:
    final, stml = _model(1), _model(3, deattention=False, se=False)
    archive = tmp_path / "weight_image_retrieval.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for run, model in (
            (ARCHIVE_RUNS["deatt-stml-pitts30k"], final),
            (ARCHIVE_RUNS["stml-pitts30k"], stml),
        ):
            buffer = io.BytesIO()
            torch.save(_payload(model.state_dict()), buffer)
            info = tarfile.TarInfo(f"{run}/model_best.pth.tar")
            info.size = len(buffer.getvalue())
            tar.addfile(info, io.BytesIO(buffer.getvalue()))
    target = _model(2)
    load_deattention_weights(archive, target)
    _assert_loaded(target, final)
    target_stml = _model(4, deattention=False, se=False)
    load_deattention_weights(archive, target_stml)
    _assert_loaded(target_stml, stml)


def test_strict_key_report(tmp_path: Path) -> None:
    source = _model(1)
    payload = _payload(source.state_dict())
    del payload["state_dict"]["pool.module.centroids"]  # type: ignore[attr-defined]
    path = tmp_path / "model_best.pth.tar"
    torch.save(payload, path)
    with pytest.raises(DataError, match="net_vlad.centroids") as info:
        load_deattention_weights(path, _model(2))
    assert "\n" not in str(info.value)
    torch.save(_payload(source.state_dict()), path)
    with pytest.raises(DataError, match="senet_attention.fc.0.weight"):
        load_deattention_weights(path, _model(2, se=False))  # the file has SE, the model not


def test_not_a_training_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "plain.pth"
    torch.save(_model(1).state_dict(), path)
    with pytest.raises(DataError, match="expected a dict with 'state_dict'"):
        load_deattention_weights(path, _model(2))
    archive = tmp_path / "other.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(path, arcname="pretrained/other/model_best.pth.tar")
    with pytest.raises(DataError, match="has no pretrained/.*senet/model_best.pth.tar"):
        load_deattention_weights(archive, _model(2))


def test_key_mapping() -> None:
    mapped = map_keys(
        {
            "encoder.module.28.weight": torch.zeros(1),
            "encoder.3.bias": torch.zeros(1),
            "pool.module.conv.weight": torch.zeros(1),
            "pool.centroids": torch.zeros(1),
            "deattention.crm_conv1.0.weight": torch.zeros(1),
            "deattention.crn_conv4.2.running_var": torch.zeros(1),
            "senet_attention.fc.2.weight": torch.zeros(1),
        }
    )
    assert sorted(mapped) == [
        "deattention.crn_conv1.0.weight",
        "deattention.crn_conv4.2.running_var",
        "net_vlad.centroids",
        "net_vlad.conv.weight",
        "senet_attention.fc.2.weight",
        "trunk.28.weight",
        "trunk.3.bias",
    ]


def test_released_entries() -> None:
    methods = isolated_manager(PLUGINS).registries().methods
    (final,) = methods.get("deattention").checkpoints
    (stml,) = methods.get("netvlad-stml").checkpoints
    assert (final.tag, stml.tag) == ("deatt-stml-pitts30k", "stml-pitts30k")
    for ckpt in (final, stml):
        assert ckpt.file.sha256 is None and "drive.google.com" in ckpt.file.uri
        assert ckpt.filename == "weight_image_retrieval.tar.gz"
        assert ckpt.overrides["model.backbone"] == "vgg16"
        assert ckpt.overrides["model.num_clusters"] == 64
    assert (final.overrides["model.deattention"], final.overrides["model.se"]) == (True, True)
    assert (stml.overrides["model.deattention"], stml.overrides["model.se"]) == (False, False)
    assert {r.dataset: dict(r.metrics) for r in final.reported} == {
        "pitts30k-val": {"R@1": 90.3, "R@5": 96.7}
    }
