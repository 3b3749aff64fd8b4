"""``--plugins sare`` alone works: it brings the netvlad plugin's model, not its method."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from vpr_bench import get_registries
from vpr_bench.cli import main
from vpr_bench.records import read_record
from vpr_bench.testing import prepare_synthcity
from vpr_bench_netvlad.config import NetVLADConfig
from vpr_bench_netvlad.model import build_netvlad
from vpr_bench_netvlad.plugin import QUICK_PROFILE


def test_sare_brings_netvlads_components_not_its_method(
    capsys: pytest.CaptureFixture[str],
) -> None:
    registries = get_registries("sare")
    assert "netvlad" in registries.models and "netvlad" not in registries.methods
    assert {"sare", "sare-joint"} <= set(registries.methods.names())
    assert main(["--plugins", "sare", "plugins"]) == 0
    assert "loaded as a dependency of sare" in capsys.readouterr().out


def test_run_plugins_sare_with_openibl_hub_weights(tmp_path: Path) -> None:
    city = prepare_synthcity(tmp_path / "data", "tiny", seed=0, progress=False)
    model_options = {k.removeprefix("model."): v for k, v in QUICK_PROFILE.items() if "model." in k}
    model = build_netvlad(NetVLADConfig(**model_options))
    hub = {k.replace("trunk.", "base_model.base.", 1): v for k, v in model.state_dict().items()}
    gen = torch.Generator().manual_seed(4)
    hub["pca_layer.weight"] = torch.randn(5, model.descriptor_dim, 1, 1, generator=gen)
    hub["pca_layer.bias"] = torch.randn(5, generator=gen)
    weights = tmp_path / "vgg16_netvlad.pth"
    torch.save(hub, weights)
    args = ["run", "--plugins", "sare", "--methods", "sare", "--profile", "quick"]
    args += ["--weights", str(weights), "--dataset", "synthcity", "--data-root", str(city)]
    args += ["--train-root", str(city), "--leaderboards", str(tmp_path / "lb")]
    args += ["--runs-dir", str(tmp_path / "runs"), "--no-baseline", "--no-cache"]
    args += ["--set", "pca_dim=5", "--device", "cpu", "--batch-size", "16"]
    assert main(args) == 0
    (path,) = (tmp_path / "lb" / "records").rglob("*.json")
    record = read_record(path)
    assert record.method == "sare" and record.descriptor_dim == 5
    assert record.weights_sha256 == hashlib.sha256(weights.read_bytes()).hexdigest()
