"""Output folders are checked before long work starts: one line naming the folder, nothing left.

The read-only cases use the ``read_only`` fixture: a real ``chmod 0555`` when the tests do not
run as root, else an injected ``OSError(EROFS)`` at the write calls (root ignores permissions).
"""

from __future__ import annotations

import shutil
from collections import namedtuple
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO_ROOT
from tests.faults.conftest import ReadOnly, files_under
from vpr_bench.cli import main


def _eval(shared_data: Path, *extra: str) -> int:
    root = shared_data / "vpr_bench" / "datasets" / "corridor"
    return main(
        ["eval", "tiny-gem", "--dataset", "vprbench-folder", "--data-root", str(root),
         "--device", "cpu", *extra]
    )  # fmt: skip


@pytest.fixture
def no_extraction(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Fails the test if any image is run through a model; the list counts the calls."""
    import vpr_bench.eval.extract as extract

    calls: list[int] = []

    def refuse(*args: Any, **kwargs: Any) -> None:
        calls.append(1)
        raise AssertionError("extraction started before the output folders were checked")

    monkeypatch.setattr(extract, "compute_descriptors", refuse)
    return calls


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    message = capsys.readouterr().err.strip()
    assert "\n" not in message, message
    return message


def test_read_only_eval_out_is_refused_before_extraction(
    shared_data: Path,
    tmp_path: Path,
    read_only: ReadOnly,
    no_extraction: list[int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A read-only --out fails in a second (exit 2, naming it), not after the whole extraction."""
    out = read_only(tmp_path / "ro") / "results"
    code = _eval(shared_data, "--out", str(out), "--cache-dir", str(tmp_path / "cache"))
    message = _one_line(capsys)
    assert code == 2
    assert message.startswith(f"error: --out folder {out} is not writable (")
    assert message.endswith("Pass a folder you can write to with --out DIR.")
    assert no_extraction == []
    assert files_under(tmp_path) == set()


def test_eval_records_naming_a_file_is_refused_before_extraction(
    shared_data: Path,
    tmp_path: Path,
    no_extraction: list[int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--records naming a file: exit 2, 'is a file, not a folder', the file untouched."""
    records = tmp_path / "records.txt"
    records.write_text("notes\n")
    code = _eval(
        shared_data, "--no-cache", "--out", str(tmp_path / "out"), "--records", str(records)
    )
    message = _one_line(capsys)
    assert code == 2
    assert f"--records folder {records} is a file, not a folder. Pass a folder" in message
    assert no_extraction == []
    assert files_under(tmp_path) == {"records.txt"} and records.read_text() == "notes\n"


def test_read_only_cache_dir_is_refused_before_extraction(
    shared_data: Path,
    tmp_path: Path,
    read_only: ReadOnly,
    no_extraction: list[int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A read-only --cache-dir with entries to write: exit 2, the fixes named, nothing written."""
    cache = read_only(tmp_path / "cache")
    code = _eval(shared_data, "--out", str(tmp_path / "out"), "--cache-dir", str(cache))
    message = _one_line(capsys)
    assert code == 2
    assert message.startswith(f"error: Descriptor cache folder {cache} is not writable (")
    assert message.endswith("to another folder, or pass --no-cache.")
    assert no_extraction == []
    assert files_under(tmp_path) == set()


def test_read_only_cache_holding_every_entry_is_still_read(
    shared_data: Path, tmp_path: Path, read_only: ReadOnly
) -> None:
    """A warm cache on a read-only disk needs no write: the evaluation reads it and succeeds."""
    cache = tmp_path / "cache"
    assert _eval(shared_data, "--out", str(tmp_path / "out1"), "--cache-dir", str(cache)) == 0
    entries = files_under(cache)
    read_only(cache)
    assert _eval(shared_data, "--out", str(tmp_path / "out2"), "--cache-dir", str(cache)) == 0
    assert files_under(cache) == entries


def test_cache_without_room_for_its_entries_is_refused(
    shared_data: Path,
    tmp_path: Path,
    no_extraction: list[int],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """1 KiB free (injected disk_usage) for ~58 KiB of descriptors: exit 1 before extracting."""
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 1024, 1024))
    cache = tmp_path / "cache"
    code = _eval(shared_data, "--out", str(tmp_path / "out"), "--cache-dir", str(cache))
    message = _one_line(capsys)
    assert code == 1
    assert f"error: Descriptor cache folder {cache} has 1.0 KiB free on its filesystem and " in (
        message
    )
    assert "KiB are needed; nothing was written. Free space there, or point --cache-dir" in message
    assert no_extraction == []
    assert files_under(tmp_path) == set()


def test_read_only_runs_dir_is_refused_before_training(
    tiny_city: Path,
    tmp_path: Path,
    read_only: ReadOnly,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`train --runs-dir` on a read-only disk: exit 2 naming it, before the data is even read."""
    import vpr_bench.train.api as api

    monkeypatch.setattr(api, "load_training_data", lambda *a, **k: pytest.fail("data read"))
    runs = read_only(tmp_path / "ro") / "runs"
    code = main(["train", "tiny-ms", "--data-root", str(tiny_city), "--runs-dir", str(runs)])
    message = _one_line(capsys)
    assert code == 2
    assert message.startswith(f"error: --runs-dir folder {runs} is not writable (")
    assert message.endswith("Pass a folder you can write to with --runs-dir DIR.")
    assert files_under(tmp_path) == set()


def test_run_checks_every_output_folder_before_training(
    tiny_city: Path,
    tmp_path: Path,
    read_only: ReadOnly,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`run` with a read-only --leaderboards: exit 2 before the first method trains."""
    import vpr_bench.train.api as api

    monkeypatch.setattr(api, "train_method", lambda *a, **k: pytest.fail("training started"))
    boards = read_only(tmp_path / "ro") / "lb"
    code = main(
        ["run", "--methods", "tiny-ms", "--dataset", "synthcity", "--data-root", str(tiny_city),
         "--train-root", str(tiny_city), "--no-baseline", "--no-cache",
         "--runs-dir", str(tmp_path / "runs"), "--leaderboards", str(boards)]
    )  # fmt: skip
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2
    assert message.startswith(f"error: Records folder {boards / 'records'} is not writable (")
    assert message.endswith(
        "Pass a --leaderboards folder you can write to (records go to its records/)."
    )
    assert files_under(tmp_path) == set()


def test_read_only_leaderboard_out_is_refused(
    tmp_path: Path, read_only: ReadOnly, capsys: pytest.CaptureFixture[str]
) -> None:
    """`leaderboard build --out` on a read-only disk: exit 2 naming it, no page written."""
    out = read_only(tmp_path / "ro")
    records = REPO_ROOT / "leaderboards" / "records"
    code = main(["leaderboard", "build", "--records", str(records), "--out", str(out)])
    message = _one_line(capsys)
    assert code == 2
    assert message.startswith(f"error: --out folder {out} is not writable (")
    assert files_under(tmp_path) == set()


def test_leaderboard_records_naming_a_file_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`leaderboard build --records FILE` says it is a file, not that it does not exist."""
    records = tmp_path / "records.json"
    records.write_text("{}\n")
    code = main(["leaderboard", "build", "--records", str(records), "--out", str(tmp_path / "lb")])
    message = _one_line(capsys)
    assert code == 2
    assert f"Records folder {records} is a file, not a folder. Pass the folder" in message
    assert "does not exist" not in message
    assert files_under(tmp_path) == {"records.json"}


def test_prepare_root_naming_a_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`data prepare --root FILE`: exit 2, one line naming it, instead of a FileExistsError."""
    root = tmp_path / "city.txt"
    root.write_text("x")
    code = main(["data", "prepare", "synthcity", "--size", "tiny", "--root", str(root)])
    message = _one_line(capsys)
    assert code == 2
    assert message == (
        f"error: --root folder {root} is a file, not a folder. Pass a folder you can write to "
        "with --root DIR (synthcity-tiny/ goes inside it)."
    )
    assert files_under(tmp_path) == {"city.txt"}


def test_the_probe_removes_the_folders_it_made(tmp_path: Path) -> None:
    """Checking a missing nested folder creates it to try, then leaves no folder or file."""
    from vpr_bench.atomic import check_writable_dir

    check_writable_dir(tmp_path / "a" / "b" / "c", "--out folder", "Fix it.", need_bytes=1)
    assert list(tmp_path.iterdir()) == []
