"""Mistakes in --config and --set: one line naming the file or the full key, exit 2, no run."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests.faults.conftest import files_under
from vpr_bench.cli import main


def _train(tmp_path: Path, *extra: str) -> int:
    return main(["train", "tiny-ms", "--runs-dir", str(tmp_path / "runs"), *extra])


def test_config_naming_a_folder_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--config DIR says it is a folder and what --config takes, instead of IsADirectoryError."""
    folder = tmp_path / "configs"
    folder.mkdir()
    assert _train(tmp_path, "--config", str(folder)) == 2
    message = capsys.readouterr().err.strip()
    assert message == (
        f"error: Config file {folder} is a folder; --config takes a TOML file, e.g. exp.toml "
        "with [model], [loss] and [trainer] tables."
    )
    assert files_under(tmp_path) == set()


def test_config_of_binary_bytes_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A --config file that is not text says so in one line, instead of a UnicodeDecodeError."""
    config = tmp_path / "exp.toml"
    config.write_bytes(b"\xff\xfe" + random.Random(0).randbytes(200))
    assert _train(tmp_path, "--config", str(config)) == 2
    message = capsys.readouterr().err.strip()
    assert "\n" not in message
    assert message.startswith(f"error: Config file {config} is not UTF-8 text (")
    assert message.endswith("--config takes a TOML file.")
    assert files_under(tmp_path) == {"exp.toml"}


def test_unknown_set_key_names_the_full_key_and_its_section(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--set trainer.lrr=1: "--set trainer.lrr: unknown config key", lr suggested, keys listed."""
    assert _train(tmp_path, "--set", "trainer.lrr=1") == 2
    message = capsys.readouterr().err.strip()
    assert "\n" not in message
    assert message.startswith(
        "error: --set trainer.lrr: unknown config key. Did you mean: lr? The keys of trainer "
        "are: accum_steps, "
    )
    assert ", lr, " in message
    assert not (tmp_path / "runs").exists()


def test_unknown_key_in_a_config_file_names_the_file_and_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unknown key in a [loss] table names the file, then loss.<key>."""
    config = tmp_path / "exp.toml"
    config.write_text("[loss]\nmargn = 0.2\n")
    assert _train(tmp_path, "--config", str(config)) == 2
    message = capsys.readouterr().err.strip()
    assert message.startswith(f"error: {config}: loss.margn: unknown config key.")
    assert "The keys of loss are: " in message
    assert files_under(tmp_path) == {"exp.toml"}
