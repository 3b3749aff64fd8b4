"""A predictions file edited after writing is named as edited, not blamed on the metric code."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vpr_bench.cli import main


@pytest.fixture(scope="module")
def written(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The predictions file of one evaluation of the tiny model on the corridor (read-only)."""
    out = tmp_path_factory.mktemp("eval")
    root = shared_data / "vpr_bench" / "datasets" / "corridor"
    code = main(
        ["eval", "tiny-gem", "--dataset", "vprbench-folder", "--data-root", str(root),
         "--device", "cpu", "--no-cache", "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    (path,) = out.rglob("*.predictions.npz")
    return path


def _edited(source: Path, target: Path, *, keep_digests: bool = True) -> Path:
    entries = dict(np.load(source, allow_pickle=False))
    knn = entries["knn_idx"].copy()
    knn[:, 0] = knn[:, 1]  # every query's first guess replaced by its second
    entries["knn_idx"] = knn
    if not keep_digests:
        del entries["digests_json"]
    np.savez_compressed(target, **entries)
    return target


def test_unedited_file_recomputes_to_its_stored_metrics(
    written: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The file as written verifies and recomputes to the metrics stored in it (exit 0)."""
    assert main(["eval", "--from-predictions", str(written)]) == 0
    assert "matches the metrics stored with the predictions" in capsys.readouterr().out


def test_edited_column_is_named_as_an_edit(
    written: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An edited knn_idx: exit 1 naming the file and the entry, not 'the metric code changed'."""
    edited = _edited(written, tmp_path / "edited.predictions.npz")
    assert main(["eval", "--from-predictions", str(edited)]) == 1
    message = capsys.readouterr().err.strip()
    assert "\n" not in message
    assert message.startswith(
        f"error: {edited} was edited after it was written (changed 'knn_idx': the sha256 "
        "saved with each entry no longer matches)"
    )
    assert "evaluate again to write a new one" in message
    assert "metric code changed" not in message


def test_edited_file_without_digests_says_it_cannot_tell(
    written: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file from before digests, edited: the message names both causes instead of one."""
    edited = _edited(written, tmp_path / "old.predictions.npz", keep_digests=False)
    assert main(["eval", "--from-predictions", str(edited)]) == 1
    message = capsys.readouterr().err.strip()
    assert "\n" not in message
    assert f"Recomputed metrics differ from those stored in {edited}: " in message
    assert "cannot tell whether it was edited or the metric code changed" in message


def test_stored_digests_cover_every_entry(written: Path) -> None:
    """digests_json lists every other entry of the file."""
    with np.load(written, allow_pickle=False) as data:
        digests = json.loads(str(data["digests_json"][()]))
        assert set(digests) == set(data.files) - {"digests_json"}
