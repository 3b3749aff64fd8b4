"""``vpr-bench run``: train what has no weights, evaluate, write records, refresh leaderboards."""

from __future__ import annotations

import argparse
from typing import Any

from vpr_bench.commands.context import CliContext, not_built_yet

HELP = (
    "train (when no weights are given) and evaluate methods, write records, refresh the leaderboard"
)


def add_parser(subparsers: Any) -> None:
    """Register the ``run`` sub-command."""
    from vpr_bench.cli import add_common_options

    parser = subparsers.add_parser("run", help=HELP, description=HELP + ".")
    add_common_options(parser)


def execute(args: argparse.Namespace, ctx: CliContext) -> int:
    """Not available until the training engine and the evaluation engine lands."""
    return not_built_yet("run", "the training engine and the evaluation engine")
