"""What the SARE plugin registers: losses, methods, profiles, paper rows, checkpoint."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from vpr_bench import Registries, resolve, resolve_experiment
from vpr_bench.cli import main
from vpr_bench.errors import ConfigError
from vpr_bench.testing import isolated_manager
from vpr_bench.train import TripletConfig, TripletMiningConfig
from vpr_bench_netvlad.checkpoint import load_openibl_weights
from vpr_bench_netvlad.config import NetVLADConfig
from vpr_bench_sare.loss import SAREConfig, SAREIndLoss, SAREJointLoss

PLUGINS = ("vpr_bench_netvlad.plugin", "vpr_bench_sare.plugin")


def test_registrations() -> None:
    reg = isolated_manager(PLUGINS).registries()
    assert resolve(reg.losses.get("sare-ind").build) is SAREIndLoss
    assert resolve(reg.losses.get("sare-joint").build) is SAREJointLoss
    sare, joint = reg.methods.get("sare"), reg.methods.get("sare-joint")
    assert (sare.model, sare.loss, sare.trainer) == ("netvlad", "sare-ind", "triplet-mining")
    assert (joint.model, joint.loss) == ("netvlad", "sare-joint")
    assert sare.train_dataset == "pitts30k-train"
    zoo = {(r.dataset, r.metrics["R@1"]) for r in sare.paper if "MODEL_ZOO" in r.source}
    assert zoo == {("pitts250k-test", 88.4), ("tokyo247", 81.0)}
    (ckpt,) = sare.checkpoints
    assert ckpt.tag == "openibl-sare-ind" and ckpt.file.sha256 is None
    assert ckpt.file.uri.startswith("https://drive.google.com/drive/folders/")


@pytest.fixture(scope="module")
def registries() -> Registries:
    return isolated_manager(PLUGINS).registries()


@pytest.mark.parametrize("method_name", ["netvlad", "sare", "sare-joint"])
@pytest.mark.parametrize("profile", ["paper", "quick"])
def test_every_profile_resolves(registries: Registries, method_name: str, profile: str) -> None:
    method = registries.methods.get(method_name)
    assert resolve(method.weights_loader) is load_openibl_weights  # OpenIBL files load
    cfg = resolve_experiment(method, registries, profile=profile)
    assert isinstance(cfg.model, NetVLADConfig) and isinstance(cfg.trainer, TripletMiningConfig)
    assert cfg.profile == profile and cfg.seed == 43
    assert isinstance(cfg.loss, TripletConfig if method_name == "netvlad" else SAREConfig)
    if profile == "paper":
        assert (cfg.model.backbone, cfg.model.num_clusters, cfg.pca_dim) == ("vgg16", 64, 4096)
        assert (cfg.trainer.lr, cfg.trainer.neg_num, cfg.trainer.height) == (1e-3, 10, 480)
        assert cfg.trainer.color_jitter == (0.7, 0.7, 0.7, 0.5)  # OpenIBL's training jitter
        assert cfg.train_dataset == "pitts30k-train"
    else:
        assert (cfg.model.backbone, cfg.model.num_clusters, cfg.pca_dim) == ("tiny", 16, None)
        assert (cfg.trainer.lr, cfg.trainer.neg_num, cfg.trainer.cache_images) == (1e-3, 5, True)
        assert cfg.trainer.color_jitter == (0.0, 0.0, 0.0, 0.0)
        assert cfg.train_dataset == "synthcity-train"


def test_sare_profiles_are_netvlad_without_the_margin(registries: Registries) -> None:
    netvlad, sare = registries.methods.get("netvlad"), registries.methods.get("sare")
    for name in ("paper", "quick"):
        assert dict(sare.profiles[name]) == {
            k: v for k, v in netvlad.profiles[name].items() if k != "loss.margin"
        }
    with pytest.raises(ConfigError, match="unknown config key"):
        resolve_experiment(sare, registries, sets=["loss.margin=0.3"])


def test_checkpoint_overrides_are_dotted_keys(registries: Registries) -> None:
    sare = registries.methods.get("sare")
    (ckpt,) = sare.checkpoints
    cfg = resolve_experiment(
        sare, registries, profile="quick", layers=[("checkpoint", ckpt.overrides)]
    )
    assert (cfg.model.backbone, cfg.model.num_clusters, cfg.model.variant) == (
        "vgg16",
        64,
        "openibl",
    )
    assert cfg.pca_dim == 4096


def test_plugin_import_does_not_import_torch() -> None:
    code = "import sys, vpr_bench_sare.plugin; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_model_zoo_checkpoint_says_where_to_get_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("VPR_BENCH_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    (ckpt,) = isolated_manager(PLUGINS).registries().methods.get("sare").checkpoints
    assert ckpt.file_name == "model_best.pth.tar"
    assert ckpt.load == "vpr_bench_netvlad.checkpoint:load_openibl_weights"
    args = ["run", "--plugins", "netvlad,sare", "--dataset", "pitts250k-test"]
    args += ["--data-root", str(tmp_path), "--checkpoint", "openibl-sare-ind", "--download"]
    assert main(args) == 1
    err = capsys.readouterr().err
    target = tmp_path / "weights" / "sare" / "openibl-sare-ind" / "model_best.pth.tar"
    assert "is a web page, not a file: download model_best.pth.tar from it" in err
    assert f"put it at {target} (or pass --weights FILE)" in err
    assert main(["list", "methods"]) == 0
    assert "--checkpoint openibl-sare-ind" in capsys.readouterr().out
