"""A run that cannot start leaves no run folder behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from vpr_bench.cli import main


def test_toml_table_given_a_number_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`trainer = 5` in a TOML file is a usage error naming the key; no runs/ folder appears."""
    config = tmp_path / "exp.toml"
    config.write_text("trainer = 5\n")
    runs = tmp_path / "runs"
    code = main(["train", "netvlad", "--config", str(config), "--runs-dir", str(runs)])
    message = capsys.readouterr().err.strip()
    assert code == 2
    assert "\n" not in message
    assert f"{config}: 'trainer' is a table of options, not a value (got 5)" in message
    assert "[trainer] table" in message
    assert not runs.exists()


@pytest.mark.parametrize("setting", ["trainer.lr=-1", "trainer.places_per_batch=0"])
def test_bad_option_creates_no_run_folder(
    tiny_city: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], setting: str
) -> None:
    """A bad lr or a zero batch fails before runs/ is made (no config.json, no train.log)."""
    runs = tmp_path / "runs"
    args = ["train", "tiny-ms", "--data-root", str(tiny_city), "--runs-dir", str(runs)]
    assert main([*args, "--set", setting]) == 2
    assert setting.split("=")[0] in capsys.readouterr().err
    assert not runs.exists()


def test_trainer_that_fails_at_start_leaves_nothing(
    tiny_city: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A trainer that refuses its data before the first step removes the run folder it got."""
    runs = tmp_path / "runs"
    args = ["train", "tiny-ms", "--data-root", str(tiny_city), "--runs-dir", str(runs)]
    assert main([*args, "--set", "trainer.views_per_place=500"]) == 1
    message = capsys.readouterr().err.strip()
    assert "\n" not in message and "trainer.views_per_place" in message
    assert not runs.exists()
