"""The CLI: version, help, listing without torch, error lines and exit codes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from vpr_bench import __version__
from vpr_bench.cli import build_parser, main
from vpr_bench.commands import COMMANDS


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VPR_BENCH_DISABLE_PLUGIN_AUTOLOAD": "1"}
    return subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "vpr_bench", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def _imported(stderr: str) -> set[str]:
    names = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[-1].strip().split(".")[0])
    return names


@pytest.mark.parametrize(
    "args",
    [("--help",), ("list", "models"), ("list", "protocols"), ("list", "methods"), ("plugins",)],
)
def test_listing_imports_no_torch(args: tuple[str, ...]) -> None:
    done = _run(*args)
    assert done.returncode == 0, done.stderr[-2000:]
    heavy = _imported(done.stderr) & {"torch", "faiss", "torchvision", "matplotlib"}
    assert not heavy, f"vpr-bench {' '.join(args)} imported {heavy}"


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"vpr-bench {__version__}"


def test_every_command_has_a_teaching_help() -> None:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    choices = subparsers.choices  # type: ignore[attr-defined]
    assert set(choices) == set(COMMANDS)
    for name, sub in choices.items():
        text = sub.format_help()
        assert len(text) > 200, f"'vpr-bench {name} --help' is too thin to teach"


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: vpr-bench" in capsys.readouterr().out


def test_unknown_kind_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["list", "modles"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'modles'" in capsys.readouterr().err


def test_bad_block_syntax_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins", "-p", "sare"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: -p expects 'no:<plugin>'") and err.count("\n") == 1


def test_debug_shows_traceback() -> None:
    from vpr_bench.errors import UsageError

    with pytest.raises(UsageError):
        main(["--debug", "plugins", "-p", "sare"])


def test_list_shows_builtins(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "models"]) == 0
    out = capsys.readouterr().out
    assert "tiny-gem" in out and "never on leaderboards" in out
    assert main(["list", "losses"]) == 0
    assert "triplet" in capsys.readouterr().out
