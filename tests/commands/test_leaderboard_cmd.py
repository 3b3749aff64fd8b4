from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from vpr_bench.cli import main


def _factory() -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "leaderboard" / "record_factory.py"
    spec = importlib.util.spec_from_file_location("lb_record_factory", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


factory = _factory()
BUILD = ["--no-autoload", "leaderboard", "build"]


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A checkout-like folder with leaderboards/records holding two records."""
    monkeypatch.chdir(tmp_path)
    records = tmp_path / "leaderboards" / "records"
    factory.put(records, method="netvlad", metrics={"R@1": 80.0, "R@5": 90.0})
    factory.put(records, method="tiny", leaderboard=False)
    return tmp_path


def test_build_then_check_with_default_folders(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*BUILD, "--no-plots"]) == 0
    out = capsys.readouterr().out
    assert "1 record(s) shown, 1 hidden" in out and "wrote pittsburgh.md" in out
    page = (repo / "leaderboards" / "pittsburgh.md").read_text(encoding="utf-8")
    assert "Regenerate with `vpr-bench leaderboard build`" in page
    assert main([*BUILD, "--no-plots", "--check"]) == 0
    assert "up to date" in capsys.readouterr().out


def test_check_fails_on_edited_markdown_and_writes_nothing(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*BUILD, "--no-plots"]) == 0
    page = repo / "leaderboards" / "pittsburgh.md"
    page.write_text(page.read_text(encoding="utf-8").replace("80.0", "99.9"), encoding="utf-8")
    edited = page.read_bytes()
    capsys.readouterr()
    assert main([*BUILD, "--no-plots", "--check"]) == 1
    out = capsys.readouterr().out
    assert "pittsburgh.md (differs)" in out and "Regenerate them with" in out
    assert page.read_bytes() == edited


def test_check_on_a_fresh_tree_lists_missing_files_and_creates_nothing(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*BUILD, "--check"]) == 1
    out = capsys.readouterr().out
    assert "pittsburgh.md (missing)" in out and ".recall.svg (missing)" in out
    assert sorted(p.name for p in (repo / "leaderboards").iterdir()) == ["records"]


def test_plots_are_built_and_checked(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(BUILD) == 0
    plots = sorted(p.name for p in (repo / "leaderboards" / "plots").iterdir())
    assert [p.rsplit(".", 2)[1:] for p in plots] == [
        ["recall", "png"],
        ["recall", "svg"],
        ["speed", "png"],
        ["speed", "svg"],
    ]
    page = (repo / "leaderboards" / "pittsburgh.md").read_text(encoding="utf-8")
    assert f"](plots/{plots[1]})" in page
    assert main([*BUILD, "--check"]) == 0
    (repo / "leaderboards" / "plots" / plots[1]).write_bytes(b"<svg/>")
    capsys.readouterr()
    assert main([*BUILD, "--check"]) == 1
    assert f"plots/{plots[1]} (differs)" in capsys.readouterr().out


def test_bad_record_is_named_skipped_and_fails_the_build(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = repo / "leaderboards" / "records" / "pittsburgh" / "sare.run1" / "pitts30k.test.json"
    bad.parent.mkdir(parents=True)
    bad.write_text('{"schema_version": 1, "surprise": 1}', encoding="utf-8")
    assert main([*BUILD, "--no-plots"]) == 1
    captured = capsys.readouterr()
    relative = "leaderboards/records/pittsburgh/sare.run1/pitts30k.test.json"
    assert f"skipped bad record: {relative}: unknown key 'surprise'" in captured.err
    assert "1 bad file(s) skipped" in captured.out
    assert (repo / "leaderboards" / "pittsburgh.md").is_file()  # the good records still render
    assert main([*BUILD, "--no-plots", "--check"]) == 1
    assert relative in capsys.readouterr().err


def test_custom_folders_and_missing_records_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    factory.put(tmp_path / "runs", method="netvlad")
    assert main([*BUILD, "--no-plots", "--records", "runs", "--out", "boards"]) == 0
    page = (tmp_path / "boards" / "pittsburgh.md").read_text(encoding="utf-8")
    assert "`vpr-bench leaderboard build --records runs --out boards`" in page
    capsys.readouterr()
    assert main([*BUILD, "--records", "nowhere"]) == 2
    assert "Records folder nowhere does not exist" in capsys.readouterr().err


def test_help_teaches_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["leaderboard", "build", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for needle in (
        "--records DIR",
        "--out DIR",
        "--check",
        "--no-plots",
        "leaderboard=False",
        "paper",
        "exit codes",
        "examples:",
    ):
        assert needle in text
