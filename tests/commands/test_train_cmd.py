from __future__ import annotations

from pathlib import Path

import pytest

from vpr_bench.cli import main


def test_help_lists_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert "vpr-bench train tiny-triplet --dataset synthcity-train" in out
    assert "--resume RUN_DIR" in out


def test_unknown_method_suggests(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "tiny-triplett"]) == 2
    assert "Did you mean: tiny-triplet" in capsys.readouterr().err


def test_resume_refuses_config_changes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["train", "tiny-triplet", "--resume", str(tmp_path), "--set", "trainer.lr=1"])
    assert code == 2
    assert "--resume continues a run with its saved config.json" in capsys.readouterr().err
