"""A full disk while writing results: one line, exit 1, and no partial result left behind."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.faults.conftest import files_under
from vpr_bench.cli import main


def _eval_corridor(shared_data: Path, out: Path, *extra: str) -> int:
    root = shared_data / "vpr_bench" / "datasets" / "corridor"
    return main(
        ["eval", "tiny-gem", "--dataset", "vprbench-folder", "--data-root", str(root),
         "--out", str(out), "--device", "cpu", *extra]
    )  # fmt: skip


def test_full_disk_at_the_predictions_write_keeps_no_record(
    shared_data: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ENOSPC while saving predictions: one-line error, exit 1, neither record nor .tmp kept."""

    def full_disk(handle: Any, **arrays: Any) -> None:
        handle.write(b"PK\x03\x04 partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez_compressed", full_disk)
    out = tmp_path / "out"
    code = _eval_corridor(shared_data, out, "--no-cache", "--save-grid", "2")
    message = capsys.readouterr().err.strip()
    assert code == 1
    assert "\n" not in message
    assert "tiny-gem.untrained/vprbench-folder.test.predictions.npz: No space left" in message
    assert "no result of tiny-gem on vprbench-folder-test was kept" in message
    assert "Free disk space or choose another --out" in message
    assert files_under(tmp_path) == set()
