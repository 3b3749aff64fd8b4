"""Records are checked on read: impossible numbers or an edited protocol are named and skipped."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO_ROOT
from vpr_bench.cli import main

COMMITTED = REPO_ROOT / "leaderboards" / "records"
# The committed record of a trained netvlad run (whichever demo run is committed).
VICTIM = sorted(COMMITTED.glob("synthcity/netvlad.2*/synthcity.test*.json"))[0].relative_to(
    COMMITTED
)
VICTIM_TAG = VICTIM.parent.name.split(".", 1)[1].upper()  # as the page shows it


def _r1(record: dict[str, Any], value: float) -> None:
    record["metrics"]["R@1"] = value


def _scored(record: dict[str, Any]) -> None:
    record["counts"]["n_scored"] = 5000


def _radius(record: dict[str, Any]) -> None:
    record["protocol"]["radius_m"] = 1000.0


def _no_positive(record: dict[str, Any]) -> None:
    record["protocol"]["no_positive"] = "exclude"


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda r: _r1(r, 250.0), "metrics['R@1'] = 250.0 is not a percentage in [0, 100]"),
        (lambda r: _r1(r, -5.0), "metrics['R@1'] = -5.0 is not a percentage in [0, 100]"),
        (
            _scored,
            "inconsistent counts: n_scored 5000 is outside "
            "[n_queries - n_without_positive, n_queries] = [600, 600]",
        ),
        (_radius, "is not the digest of the record's own protocol fields"),
        (_no_positive, "is not the digest of the record's own protocol fields"),
    ],
    ids=["r1-250", "r1-negative", "n-scored", "radius", "no-positive"],
)
def test_bad_record_is_named_and_skipped(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    edit: Callable[[dict[str, Any]], None],
    expected: str,
) -> None:
    """An impossible metric, count or edited protocol: the file is named, skipped, exit 1."""
    records = tmp_path / "records"
    shutil.copytree(COMMITTED, records)
    victim = records / VICTIM
    record = json.loads(victim.read_text())
    assert record["protocol"]["radius_m"] == 25.0 and record["protocol"]["no_positive"] == "fail"
    edit(record)
    victim.write_text(json.dumps(record))
    code = main(["leaderboard", "build", "--records", str(records), "--out", str(tmp_path / "lb")])
    captured = capsys.readouterr()
    assert code == 1
    errors = captured.err.strip().splitlines()
    assert len(errors) == 1
    assert errors[0].startswith(f"error: skipped bad record: {victim}: ")
    assert expected in errors[0]
    assert "7 record(s) shown" in captured.out
    page = (tmp_path / "lb" / "synthcity.md").read_text()
    assert VICTIM_TAG not in page


def test_committed_records_pass_the_read_checks(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The committed records and pages pass: leaderboard build --check stays green."""
    monkeypatch.chdir(REPO_ROOT)
    code = main(["leaderboard", "build", "--check", "--no-plots"])
    assert code == 0, capsys.readouterr()
