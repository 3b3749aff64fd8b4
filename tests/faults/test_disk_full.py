"""A full disk while writing results: one line, exit 1, and no partial result left behind."""

from __future__ import annotations

import errno
import re
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
    assert re.search(
        r"tiny-gem\.untrained/vprbench-folder\.test\.corridor-[0-9a-f]{8}\.predictions\.npz: "
        "No space left",
        message,
    )
    assert "no result of tiny-gem on vprbench-folder-test was kept" in message
    assert "Free disk space or choose another --out" in message
    assert files_under(tmp_path) == set()


def test_full_disk_at_the_cache_reservation_is_one_line(
    shared_data: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ENOSPC reserving a cache entry: one line naming it, exit 1, no .tmp, no record."""
    import os

    def full_disk(fd: int, offset: int, length: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", full_disk)
    out, cache = tmp_path / "out", tmp_path / "cache"
    code = _eval_corridor(shared_data, out, "--cache-dir", str(cache))
    message = capsys.readouterr().err.strip()
    assert code == 1
    assert "\n" not in message
    assert message.startswith(f"error: Cannot write descriptor cache entry {cache}/")
    assert "No space left on device; nothing was cached" in message
    assert "or pass --no-cache" in message
    assert files_under(tmp_path) == set()


def test_stale_cache_temps_of_killed_writers_are_removed(tmp_path: Path) -> None:
    """A .tmp left by a killed writer (dead pid, or an old untagged one) goes on the next write."""
    import os
    import subprocess
    import sys
    import time

    from vpr_bench.eval.cache import STALE_LEGACY_TEMP_S, DescriptorCache

    cache = DescriptorCache(tmp_path, model_key="fault-model")
    folder = cache.path("k").parent
    folder.mkdir(parents=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    orphan = folder / f".old.npy.pid{dead.stdout.strip()}.x1.tmp"
    legacy = folder / ".old.npy.x2.tmp"
    live = folder / f".other.npy.pid{os.getppid()}.x3.tmp"
    for path in (orphan, legacy, live):
        path.write_bytes(b"\x93NUMPY partial")
    old = time.time() - STALE_LEGACY_TEMP_S - 60
    os.utime(legacy, (old, old))
    with cache.writer("k", 2, 3, {}) as writer:
        writer.write(0, np.ones((2, 3), dtype=np.float32))
    assert sorted(p.name for p in folder.iterdir()) == sorted([live.name, "k.json", "k.npy"])


def test_full_disk_creating_the_cache_folder_is_one_line(
    shared_data: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ENOSPC creating the cache folder: exit 1, one line naming it, before any extraction."""
    import os

    import vpr_bench.eval.extract as extract

    cache = tmp_path / "cache"
    real_mkdir = os.mkdir

    def full_disk(path: Any, *args: Any, **kwargs: Any) -> None:
        if str(path).startswith(str(cache)):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", full_disk)
    monkeypatch.setattr(extract, "compute_descriptors", lambda *a, **k: pytest.fail("extracted"))
    code = _eval_corridor(shared_data, tmp_path / "out", "--cache-dir", str(cache))
    message = capsys.readouterr().err.strip()
    assert code == 1
    assert "\n" not in message
    assert message == (
        f"error: Descriptor cache folder {cache}: No space left on device; nothing was written. "
        "Free space there, or point --cache-dir (or VPR_BENCH_CACHE) to another folder, or pass "
        "--no-cache."
    )
    assert files_under(tmp_path) == set()


def test_full_disk_at_the_run_config_leaves_no_run_folder(
    tiny_city: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ENOSPC writing a new run's config.json: exit 1 naming it, and no run folder is kept."""
    import vpr_bench.train.api as api

    def full_disk(path: Path, data: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(api, "atomic_write_json", full_disk)
    runs = tmp_path / "runs"
    code = main(["train", "tiny-ms", "--data-root", str(tiny_city), "--runs-dir", str(runs)])
    message = capsys.readouterr().err.strip()
    assert code == 1
    assert "\n" not in message
    assert message.startswith(f"error: Cannot write {runs}/tiny-ms/")
    assert message.endswith(
        "/config.json: No space left on device; the run did not start and nothing was kept. "
        "Free disk space or pass another --runs-dir."
    )
    assert list(tmp_path.iterdir()) == []


def test_full_disk_in_leaderboard_build_changes_no_page(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOSPC writing the second page: exit 1 naming it; the first page keeps its old text."""
    import os

    from tests.conftest import REPO_ROOT
    from vpr_bench.leaderboard.render import GENERATED_MARKER

    out = tmp_path / "lb"
    out.mkdir()
    old = f"{GENERATED_MARKER}\nold page\n"
    (out / "synthcity.md").write_text(old)
    real_fdopen, opened = os.fdopen, []

    def fill_up(fd: int, *args: Any, **kwargs: Any) -> Any:
        handle = real_fdopen(fd, *args, **kwargs)
        opened.append(fd)
        if len(opened) == 2:  # the second staged page finds the disk full

            def write(data: bytes) -> int:
                raise OSError(errno.ENOSPC, "No space left on device")

            handle.write = write
        return handle

    monkeypatch.setattr(os, "fdopen", fill_up)
    records = REPO_ROOT / "leaderboards" / "records"
    code = main(
        ["leaderboard", "build", "--no-plots", "--records", str(records), "--out", str(out)]
    )
    message = capsys.readouterr().err.strip()
    assert code == 1
    assert "\n" not in message
    assert message == (
        f"error: Cannot write {out / 'vprbench-folder.md'}: No space left on device; no "
        f"leaderboard file in {out} was changed. Free disk space or pass another --out, then "
        "build again."
    )
    assert files_under(out) == {"synthcity.md"}
    assert (out / "synthcity.md").read_text() == old


def test_full_disk_while_preparing_synthcity_keeps_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOSPC at the 20th image of `data prepare`: exit 1, one line, no partial city or folder."""
    import vpr_bench.data.synthcity.writer as writer

    real_write, written = writer._write_file, []

    def fill_up(path: Path, data: bytes) -> None:
        written.append(path)
        if len(written) == 20:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real_write(path, data)

    monkeypatch.setattr(writer, "_write_file", fill_up)
    root = tmp_path / "data" / "city"
    code = main(["data", "prepare", "synthcity", "--size", "tiny", "--root", str(root)])
    message = capsys.readouterr().err.strip()
    assert code == 1
    assert "\n" not in message
    assert message.startswith(f"error: Cannot write {written[-1]}: No space left on device; ")
    assert message.endswith(
        "no part of synthcity-tiny was kept. Free disk space there or pass another --root."
    )
    assert list(tmp_path.iterdir()) == []


def test_unforeseen_os_error_is_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An OSError no command turned into its own message: one line with file and reason, exit 1."""
    import importlib

    command = importlib.import_module("vpr_bench.commands.plugins_cmd")

    def full_disk(*args: Any) -> int:
        raise OSError(errno.ENOSPC, "No space left on device", "/data/somewhere.bin")

    monkeypatch.setattr(command, "execute", full_disk)
    assert main(["plugins"]) == 1
    assert capsys.readouterr().err == (
        "error: /data/somewhere.bin: No space left on device; free disk space and run again "
        "(--debug shows where it happened).\n"
    )
