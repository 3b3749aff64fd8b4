"""``vpr-bench eval``: evaluate a method or checkpoint on a dataset under its protocol."""

from __future__ import annotations

import argparse
from typing import Any

from vpr_bench.commands.context import CliContext, not_built_yet

HELP = "evaluate a method or checkpoint on a dataset under its protocol"


def add_parser(subparsers: Any) -> None:
    """Register the ``eval`` sub-command."""
    from vpr_bench.cli import add_common_options

    parser = subparsers.add_parser("eval", help=HELP, description=HELP + ".")
    add_common_options(parser)


def execute(args: argparse.Namespace, ctx: CliContext) -> int:
    """Not available until the evaluation engine (eval/) lands."""
    return not_built_yet("eval", "the evaluation engine (eval/)")
