"""Untrained baselines of two configs of one model keep separate record files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from vpr_bench.builtin.tiny_model import TinyGeMConfig, build_tiny_gem
from vpr_bench.cli import main
from vpr_bench.config import config_hash


def _run(shared_data: Path, tmp_path: Path, dim: int) -> int:
    weights = tmp_path / f"tiny-{dim}.pt"
    if not weights.exists():
        torch.save(build_tiny_gem(TinyGeMConfig(dim=dim, seed=3)).state_dict(), weights)
    corridor = shared_data / "vpr_bench" / "datasets" / "corridor"
    return main(
        ["run", "--methods", "tiny-triplet", "--dataset", "vprbench-folder",
         "--data-root", str(corridor), "--weights", str(weights), "--set", f"model.dim={dim}",
         "--leaderboards", str(tmp_path / "lb"), "--runs-dir", str(tmp_path / "runs"),
         "--device", "cpu", "--no-cache"]
    )  # fmt: skip


def test_second_model_config_does_not_overwrite_the_first(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """model.dim=32 then 16: the first keeps tiny-gem.untrained/, the second gets a digest tag."""
    folder = tmp_path / "lb" / "records" / "vprbench-folder"
    assert _run(shared_data, tmp_path, 32) == 0
    (plain,) = (folder / "tiny-gem.untrained").glob("vprbench-folder.test.*.json")
    assert json.loads(plain.read_text())["config"]["model"]["dim"] == 32
    assert _run(shared_data, tmp_path, 16) == 0
    assert json.loads(plain.read_text())["config"]["model"]["dim"] == 32
    tagged = sorted(p.name for p in folder.iterdir() if p.name.startswith("tiny-gem.untrained-"))
    assert len(tagged) == 1
    record = json.loads((folder / tagged[0] / plain.name).read_text())  # the same data
    assert record["config"]["model"]["dim"] == 16
    assert tagged[0] == f"tiny-gem.untrained-{config_hash(record['config']['model'])[:8]}"
    assert record["checkpoint_tag"] == tagged[0].removeprefix("tiny-gem.")
    out = capsys.readouterr().out
    # The run's lines name the method whose config each baseline of the model was made with.
    assert "tiny-gem [untrained, config of tiny-triplet]" in out
    assert f"tiny-gem [{record['checkpoint_tag']}, config of tiny-triplet]" in out
