"""``vpr-bench data``: check or prepare datasets on disk."""

from __future__ import annotations

import argparse
from typing import Any

from vpr_bench.commands.context import CliContext, not_built_yet

HELP = "check or prepare datasets on disk"


def add_parser(subparsers: Any) -> None:
    """Register the ``data`` sub-command."""
    from vpr_bench.cli import add_common_options

    parser = subparsers.add_parser("data", help=HELP, description=HELP + ".")
    add_common_options(parser)


def execute(args: argparse.Namespace, ctx: CliContext) -> int:
    """Not available until the dataset readers (data/) lands."""
    return not_built_yet("data", "the dataset readers (data/)")
