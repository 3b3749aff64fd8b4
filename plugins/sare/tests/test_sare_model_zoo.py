"""The model-zoo path end to end: an OpenIBL ``model_best.pth.tar`` through ``--checkpoint``."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vpr_bench.cli import main
from vpr_bench.records import read_record
from vpr_bench_netvlad.config import NetVLADConfig
from vpr_bench_netvlad.model import build_netvlad


def _openibl_training_file(path: Path) -> None:
    """Our VGG16 NetVLAD saved the way OpenIBL's training script saves it (DDP keys)."""
    state = build_netvlad(NetVLADConfig(backbone="vgg16", pretrained=None, seed=5)).state_dict()
    theirs = {
        "module." + key.replace("trunk.", "base_model.base.", 1): tensor
        for key, tensor in state.items()
    }
    torch.save({"state_dict": theirs, "epoch": 4, "best_recall5": 0.9}, path)


@pytest.mark.slow
def test_openibl_sare_checkpoint_runs_end_to_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["data", "prepare", "synthcity", "--size", "tiny", "--root", str(tmp_path / "data")])
        == 0
    )
    city = tmp_path / "data" / "synthcity-tiny"
    monkeypatch.setenv("VPR_BENCH_WEIGHTS", str(tmp_path / "weights"))
    target = tmp_path / "weights" / "sare" / "openibl-sare-ind" / "model_best.pth.tar"
    target.parent.mkdir(parents=True)
    _openibl_training_file(target)
    args = ["run", "--plugins", "netvlad,sare", "--checkpoint", "openibl-sare-ind"]
    args += ["--dataset", "synthcity", "--data-root", str(city), "--train-root", str(city)]
    args += ["--leaderboards", str(tmp_path / "lb"), "--runs-dir", str(tmp_path / "runs")]
    # PCA is fitted on the city (not Pitts30k-train), and the tiny city has fewer images than
    # the release's 4096 PCA dimensions.
    args += ["--set", "train_dataset=synthcity-train", "--set", "pca_dim=64"]
    args += ["--set", "pca_samples=200", "--batch-size", "8"]
    assert main(args) == 0
    (path,) = (tmp_path / "lb" / "records").rglob("*.json")
    record = read_record(path)
    assert (record.method, record.checkpoint_tag) == ("sare", "openibl-sare-ind")
    assert record.trained_on == "pitts30k-train" and record.descriptor_dim == 64
    assert record.config["model"]["backbone"] == "vgg16"
    assert record.config["train_dataset"] == "synthcity-train"
    assert (target.parent / "pca_params_model_best.h5").is_file()
    assert "# Leaderboard: synthcity" in capsys.readouterr().out
