"""Written files honour the umask (a shared leaderboard checkout stays group-readable)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from vpr_bench.atomic import atomic_write_json
from vpr_bench.cli import main


@pytest.fixture
def umask_022() -> Iterator[None]:
    """Run the test under the common umask 022, restoring the previous one after it."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def _modes(root: Path) -> dict[str, int]:
    return {
        p.relative_to(root).as_posix(): stat.S_IMODE(p.stat().st_mode)
        for p in root.rglob("*")
        if p.is_file()
    }


@pytest.mark.usefixtures("umask_022")
def test_eval_outputs_and_pages_are_0644_under_umask_022(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Record, predictions, grid, cache entry and leaderboard page are 0644, not 0600."""
    corridor = shared_data / "vpr_bench" / "datasets" / "corridor"
    out = tmp_path / "out"
    code = main(
        ["eval", "tiny-gem", "--dataset", "vprbench-folder", "--data-root", str(corridor),
         "--out", str(out), "--cache-dir", str(tmp_path / "cache"), "--device", "cpu",
         "--save-grid", "2"]
    )  # fmt: skip
    assert code == 0
    code = main(["leaderboard", "build", "--records", str(out), "--out", str(tmp_path / "lb")])
    assert code == 0, capsys.readouterr().err
    modes = {**_modes(out), **_modes(tmp_path / "cache"), **_modes(tmp_path / "lb")}
    suffixes = {Path(name).suffix for name in modes}
    assert {".json", ".npz", ".png", ".npy", ".md"} <= suffixes
    assert {name: mode for name, mode in modes.items() if mode != 0o644} == {}


def test_atomic_writes_follow_a_stricter_umask(tmp_path: Path) -> None:
    """Under umask 027 an atomically written file is 0640 (the umask, not a fixed mode)."""
    previous = os.umask(0o027)
    try:
        atomic_write_json(tmp_path / "config.json", {"a": 1})
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "config.json").stat().st_mode) == 0o640
