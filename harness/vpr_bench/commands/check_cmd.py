"""``vpr-bench check``: run the conformance kit on an installed plugin."""

from __future__ import annotations

import argparse
from typing import Any

from vpr_bench.commands.context import CliContext, not_built_yet

HELP = "run the conformance kit on an installed plugin"


def add_parser(subparsers: Any) -> None:
    """Register the ``check`` sub-command."""
    from vpr_bench.cli import add_common_options

    parser = subparsers.add_parser("check", help=HELP, description=HELP + ".")
    add_common_options(parser)


def execute(args: argparse.Namespace, ctx: CliContext) -> int:
    """Not available until the conformance suites for methods and datasets lands."""
    return not_built_yet("check", "the conformance suites for methods and datasets")
