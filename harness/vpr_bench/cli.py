"""The ``vpr-bench`` command line: parsing and dispatch only.

Sub-commands live in :mod:`vpr_bench.commands` (one module each). Errors print one line saying
what was wrong and how to fix it; exit code 2 for usage errors, 1 for failures; ``--debug``
shows the traceback. Nothing heavy (torch, faiss) is imported before a command needs it.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from vpr_bench import __version__
from vpr_bench.commands import COMMANDS
from vpr_bench.errors import VprBenchError

__all__ = ["build_parser", "main"]

DESCRIPTION = """\
vpr-bench trains and evaluates visual place recognition methods, shipped as plugins, under
named, versioned evaluation protocols, and builds leaderboards from the result records.

typical use:
  vpr-bench plugins                                  what is installed
  vpr-bench list methods                             what can be run
  vpr-bench data prepare synthcity                   write the embedded synthetic city
  vpr-bench run --plugins netvlad,sare --dataset synthcity --profile quick
  vpr-bench leaderboard build                        regenerate leaderboards/*.md
"""


def _command_module(name: str) -> ModuleType:
    return importlib.import_module(f"vpr_bench.commands.{name.replace('-', '_')}_cmd")


class StrictArgumentParser(argparse.ArgumentParser):
    """An ArgumentParser that takes no abbreviated long options.

    argparse accepts any unique prefix by default, so ``eval --checkpoint X`` would silently
    mean ``--checkpoint-tag X``. Sub-command parsers inherit this class.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    """Build the full argument parser (every sub-command with its help)."""
    parser = StrictArgumentParser(
        prog="vpr-bench",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"vpr-bench {__version__}")
    _add_global_options(parser)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        _command_module(name).add_parser(subparsers)
    return parser


def _add_global_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("plugin selection and output (before or after the command)")
    group.add_argument(
        "--plugins",
        metavar="A,B",
        default=argparse.SUPPRESS,
        help="load only these entry-point plugins (default: all, or $VPR_BENCH_PLUGINS)",
    )
    group.add_argument(
        "-p",
        dest="block",
        action="append",
        metavar="no:NAME",
        default=argparse.SUPPRESS,
        help="block a plugin, e.g. -p no:sare (repeatable)",
    )
    group.add_argument(
        "--strict-plugins",
        action="store_true",
        default=argparse.SUPPRESS,
        help="a plugin that fails to import is an error, not a warning",
    )
    group.add_argument(
        "--no-autoload",
        action="store_true",
        default=argparse.SUPPRESS,
        help="load no entry-point plugin that --plugins does not name "
        "(also: VPR_BENCH_DISABLE_PLUGIN_AUTOLOAD=1)",
    )
    group.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks"
    )
    group.add_argument(
        "-v", "--verbose", action="count", default=argparse.SUPPRESS, help="more log output"
    )


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """Let the global options also follow a sub-command (``vpr-bench list --plugins x``)."""
    _add_global_options(parser)


_DEFAULTS = {
    "plugins": None,
    "block": None,
    "strict_plugins": False,
    "no_autoload": False,
    "debug": False,
    "verbose": 0,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    for key, value in _DEFAULTS.items():
        if not hasattr(args, key):
            setattr(args, key, value)
    logging.basicConfig(
        level=logging.DEBUG
        if args.verbose > 1
        else logging.INFO
        if args.verbose
        else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not args.command:
        parser.print_help()
        return 2
    from vpr_bench.commands.context import CliContext

    ctx = CliContext(args)
    try:
        return int(_command_module(args.command).execute(args, ctx))
    except VprBenchError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # a file-system failure no command turned into its own message
        if args.debug:
            raise
        print(f"error: {_os_error_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _os_error_line(exc: OSError) -> str:
    """One line for an unforeseen ``OSError``: the file, the reason and what to try."""
    from vpr_bench.atomic import NO_SPACE

    where = f"{exc.filename}: " if exc.filename else ""
    fix = (
        "free disk space and run again"
        if exc.errno in NO_SPACE
        else "check the path and its permissions"
    )
    return f"{where}{exc.strerror or exc}; {fix} (--debug shows where it happened)."
