"""``vpr-bench train``: train a method on a training dataset."""

from __future__ import annotations

import argparse
from typing import Any

from vpr_bench.commands.context import CliContext, not_built_yet

HELP = "train a method on a training dataset"


def add_parser(subparsers: Any) -> None:
    """Register the ``train`` sub-command."""
    from vpr_bench.cli import add_common_options

    parser = subparsers.add_parser("train", help=HELP, description=HELP + ".")
    add_common_options(parser)


def execute(args: argparse.Namespace, ctx: CliContext) -> int:
    """Not available until the training engine (train/) lands."""
    return not_built_yet("train", "the training engine (train/)")
