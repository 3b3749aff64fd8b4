"""Evaluation options are checked before the descriptor cache is consulted."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.conftest import files_under
from vpr_bench.cli import main


def _eval(shared_data: Path, out: Path, *extra: str) -> int:
    root = shared_data / "vpr_bench" / "datasets" / "corridor"
    return main(
        [
            "eval",
            "tiny-gem",
            "--dataset",
            "vprbench-folder",
            "--data-root",
            str(root),
            "--out",
            str(out / "out"),
            "--cache-dir",
            str(out / "cache"),
            "--device",
            "cpu",
            *extra,
        ]
    )


@pytest.fixture(scope="module")
def warm(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One evaluation of the tiny model on the corridor, so its descriptors are cached."""
    out = tmp_path_factory.mktemp("warm")
    assert _eval(shared_data, out) == 0
    assert any(p.is_file() for p in (out / "cache").rglob("*"))
    return out


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [("--batch-size", "0", "an integer >= 1"), ("--num-workers", "-2", "an integer >= 0")],
)
def test_bad_option_with_a_warm_cache_is_refused(
    shared_data: Path,
    warm: Path,
    capsys: pytest.CaptureFixture[str],
    option: str,
    value: str,
    expected: str,
) -> None:
    """--batch-size 0 / --num-workers -2 exit 2 naming the option though the cache would hit."""
    record = next((warm / "out").rglob("*.json"))
    before = (files_under(warm), record.read_bytes())
    capsys.readouterr()
    assert _eval(shared_data, warm, option, value) == 2
    message = capsys.readouterr().err.strip()
    assert "\n" not in message
    assert f"{option} must be {expected}, got {value}" in message
    assert (files_under(warm), record.read_bytes()) == before


def test_run_refuses_a_zero_batch_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`run --batch-size 0` is refused before any training or writing."""
    code = main(
        ["run", "--methods", "tiny-ms", "--dataset", "synthcity", "--batch-size", "0",
         "--runs-dir", str(tmp_path / "runs"), "--leaderboards", str(tmp_path / "lb")]
    )  # fmt: skip
    assert code == 2
    assert "--batch-size must be an integer >= 1, got 0" in capsys.readouterr().err
    assert files_under(tmp_path) == set()


def test_negative_workers_without_cache_is_refused(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--num-workers -2 --no-cache` exits 2 naming the option, before any extraction."""
    assert _eval(shared_data, tmp_path, "--num-workers", "-2", "--no-cache") == 2
    message = capsys.readouterr().err.strip()
    assert "\n" not in message
    assert "--num-workers must be an integer >= 0, got -2; pass 0" in message
    assert files_under(tmp_path) == set()
