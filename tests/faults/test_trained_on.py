"""`--trained-on` names a registered dataset and agrees with the weights' own sidecar."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.faults.conftest import files_under
from vpr_bench.cli import main


def _run(shared_data: Path, tmp_path: Path, weights: Path, trained_on: str) -> int:
    corridor = shared_data / "vpr_bench" / "datasets" / "corridor"
    return main(
        ["run", "--methods", "tiny-triplet", "--dataset", "vprbench-folder",
         "--data-root", str(corridor), "--weights", str(weights), "--trained-on", trained_on,
         "--leaderboards", str(tmp_path / "lb"), "--runs-dir", str(tmp_path / "runs")]
    )  # fmt: skip


@pytest.fixture
def weights(tmp_path: Path) -> Path:
    """A weights file with the sidecar vpr-bench writes beside it (trained on synthcity-train)."""
    path = tmp_path / "w" / "final.pt"
    path.parent.mkdir()
    path.write_bytes(b"not read: the run is refused first")
    sidecar = {"kind": "weights", "config": {"dataset": "synthcity-train", "method": "x"}}
    path.with_suffix(".json").write_text(json.dumps(sidecar))
    return path


def test_unknown_trained_on_is_refused(
    shared_data: Path, tmp_path: Path, weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--trained-on pitts31k-train (no such dataset) exits 2 with a did-you-mean."""
    before = files_under(tmp_path)
    assert _run(shared_data, tmp_path, weights, "pitts31k-train") == 2
    message = capsys.readouterr().err.strip()
    assert "\n" not in message
    assert "Unknown dataset 'pitts31k-train'. Did you mean: pitts30k-train?" in message
    assert "--trained-on takes a dataset name" in message
    assert files_under(tmp_path) == before


def test_trained_on_contradicting_the_sidecar_is_refused(
    shared_data: Path, tmp_path: Path, weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--trained-on pitts30k-train for weights whose sidecar says synthcity-train exits 2."""
    before = files_under(tmp_path)
    assert _run(shared_data, tmp_path, weights, "pitts30k-train") == 2
    message = capsys.readouterr().err.strip()
    assert "\n" not in message
    assert f"--trained-on pitts30k-train contradicts {weights.with_suffix('.json')}" in message
    assert "pass --trained-on synthcity-train" in message
    assert files_under(tmp_path) == before
