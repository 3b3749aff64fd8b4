"""Faults in dataset files: ``data check`` must neither run, trust nor write them."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from vpr_bench.cli import main


class _RunsShell:
    """An object whose unpickling calls ``os.system`` (what a crafted .npy would do)."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (self.command,)


def _write_pickled_npy(path: Path, payload: object) -> None:
    """A .npy v1.0 file with an object header and ``payload`` pickled after it."""
    with open(path, "wb") as handle:
        np.lib.format.write_array_header_1_0(
            handle, {"descr": "|O", "fortran_order": False, "shape": (111, 2)}
        )
        pickle.dump(payload, handle, protocol=2)


def test_npy_pickle_that_runs_code_is_refused(
    corridor_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A ground_truth_new.npy whose pickle calls os.system is refused, naming the file."""
    marker = tmp_path / "pwned"
    gt = corridor_copy / "ground_truth_new.npy"
    _write_pickled_npy(gt, _RunsShell(f"touch {marker}"))
    code = main(["data", "check", "vprbench-folder", "--root", str(corridor_copy)])
    captured = capsys.readouterr()
    assert code == 1
    assert not marker.exists()
    assert "OK" not in captured.out
    message = captured.err.strip()
    assert "\n" not in message
    assert str(gt) in message and "posix.system" in message
    assert "original ground_truth_new.npy" in message


def test_real_ground_truth_still_loads(
    corridor_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The real corridor ground truth (a Python 2 object pickle) passes the restricted reader."""
    assert main(["data", "check", "vprbench-folder", "--root", str(corridor_copy)]) == 0
    assert "OK: all 222 files exist" in capsys.readouterr().out
