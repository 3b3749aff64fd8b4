"""``vpr-bench leaderboard``: build markdown leaderboards from result records."""

from __future__ import annotations

import argparse
from typing import Any

from vpr_bench.commands.context import CliContext, not_built_yet

HELP = "build markdown leaderboards from result records"


def add_parser(subparsers: Any) -> None:
    """Register the ``leaderboard`` sub-command."""
    from vpr_bench.cli import add_common_options

    parser = subparsers.add_parser("leaderboard", help=HELP, description=HELP + ".")
    add_common_options(parser)


def execute(args: argparse.Namespace, ctx: CliContext) -> int:
    """Not available until the leaderboard builder (leaderboard/) lands."""
    return not_built_yet("leaderboard", "the leaderboard builder (leaderboard/)")
