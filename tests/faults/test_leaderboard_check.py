"""`leaderboard build --check` compares what the records determine, not the command line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from vpr_bench.cli import main


@pytest.fixture
def run_pages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Pages written the way `vpr-bench run --leaderboards DIR` writes them (default command)."""
    folder = tmp_path / "leaderboards"
    shutil.copytree(REPO_ROOT / "leaderboards" / "records", folder / "records")
    monkeypatch.chdir(tmp_path)
    assert main(["leaderboard", "build", "--no-plots"]) == 0
    assert "Regenerate with `vpr-bench leaderboard build`" in (folder / "synthcity.md").read_text()
    return folder


def test_page_made_by_run_is_not_stale_for_an_explicit_check(
    run_pages: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A page whose only difference is the regenerate command passes --check (exit 0)."""
    capsys.readouterr()
    args = ["leaderboard", "build", "--check", "--no-plots"]
    code = main([*args, "--records", str(run_pages / "records"), "--out", str(run_pages)])
    assert code == 0, capsys.readouterr().out
    assert "are up to date" in capsys.readouterr().out


def test_a_changed_number_is_still_stale(
    run_pages: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Content that depends on the records (a number in a table) still makes the page stale."""
    page = run_pages / "synthcity.md"
    text = page.read_text()
    record = sorted((run_pages / "records").glob("synthcity/netvlad.2*/*.json"))[0]
    cell = f"|  {json.loads(record.read_text())['metrics']['R@1']:.1f} |"
    assert cell in text
    page.write_text(text.replace(cell, cell.replace(".", "1."), 1))
    capsys.readouterr()
    args = ["leaderboard", "build", "--check", "--no-plots"]
    code = main([*args, "--records", str(run_pages / "records"), "--out", str(run_pages)])
    assert code == 1
    assert "synthcity.md (differs)" in capsys.readouterr().out
