"""``--weights`` with OpenIBL's hub layout (``vgg16_netvlad.pth``) through ``eval`` and ``run``.

The file is synthesised from a quick-profile (tiny trunk) NetVLAD: OpenIBL's key names
(``base_model.base.*``, ``net_vlad.*``) plus a folded ``pca_layer``, exactly the hub layout.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from vpr_bench.cli import main
from vpr_bench.testing import isolated_manager, prepare_synthcity
from vpr_bench_netvlad import plugin
from vpr_bench_netvlad.config import NetVLADConfig
from vpr_bench_netvlad.model import build_netvlad

PCA_DIM = 6


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepare_synthcity(tmp_path_factory.mktemp("data"), "tiny", seed=0, progress=False)


@pytest.fixture(scope="module")
def hub_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from vpr_bench import resolve_experiment

    registries = isolated_manager([plugin]).registries()
    config = resolve_experiment(registries.methods.get("netvlad"), registries, profile="quick")
    model = build_netvlad(config.model)
    assert isinstance(config.model, NetVLADConfig) and config.model.backbone == "tiny"
    state = {
        key.replace("trunk.", "base_model.base.", 1): tensor
        for key, tensor in model.state_dict().items()
    }
    gen = torch.Generator().manual_seed(3)
    state["pca_layer.weight"] = torch.randn(PCA_DIM, model.descriptor_dim, 1, 1, generator=gen)
    state["pca_layer.bias"] = torch.randn(PCA_DIM, generator=gen)
    path = tmp_path_factory.mktemp("hub") / "vgg16_netvlad.pth"
    torch.save(state, path)
    return path


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_eval_weights_in_the_hub_layout(hub_file: Path, city: Path, tmp_path: Path) -> None:
    args = ["eval", "netvlad", "--profile", "quick", "--weights", str(hub_file)]
    args += ["--dataset", "synthcity", "--data-root", str(city), "--out", str(tmp_path / "out")]
    args += ["--no-cache", "--device", "cpu", "--batch-size", "16", "--plugins", "netvlad"]
    assert main(args) == 0
    (path,) = (tmp_path / "out").rglob("synthcity.test.*.json")
    from vpr_bench.records import read_record

    record = read_record(path)
    assert record.weights_sha256 == _sha(hub_file) and record.method == "netvlad"


def test_run_weights_in_the_hub_layout_use_its_pca(
    hub_file: Path, city: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    args = ["run", "--plugins", "netvlad", "--methods", "netvlad", "--profile", "quick"]
    args += ["--weights", str(hub_file), "--dataset", "synthcity", "--data-root", str(city)]
    args += ["--train-root", str(city), "--leaderboards", str(tmp_path / "lb")]
    args += ["--runs-dir", str(tmp_path / "runs"), "--no-baseline", "--no-cache"]
    args += ["--set", "pca_dim=4", "--device", "cpu", "--batch-size", "16"]
    with caplog.at_level("INFO", logger="vpr_bench"):
        assert main(args) == 0
    from vpr_bench.records import read_record

    (path,) = (tmp_path / "lb" / "records").rglob("*.json")
    record = read_record(path)
    assert record.weights_sha256 == _sha(hub_file) and record.descriptor_dim == 4
    assert f"PCA-whitening from the weights file {hub_file.name} (not fitted)" in caplog.text
    assert "Fitting PCA-whitening" not in caplog.text
