"""``vpr-bench plugins``: what is installed and what each plugin provides."""

from __future__ import annotations

import argparse
from typing import Any

from vpr_bench.commands.context import CliContext

HELP = "list loaded plugins: name, distribution, version and what each provides"


def add_parser(subparsers: Any) -> None:
    """Register the ``plugins`` sub-command."""
    from vpr_bench.cli import add_common_options

    parser = subparsers.add_parser(
        "plugins",
        help=HELP,
        description=HELP + ". Plugins that failed to import are listed as warnings at the end.",
    )
    add_common_options(parser)


def execute(args: argparse.Namespace, ctx: CliContext) -> int:
    """Print one block per plugin."""
    from tabulate import tabulate

    manager = ctx.manager()
    manager.registries()
    rows = []
    for info in manager.plugins:
        provides = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in info.provides.items())
        if info.dependency_of is not None:
            provides += f" (loaded as a dependency of {info.dependency_of}; methods not loaded)"
        rows.append([info.name, info.distribution, info.version, provides or "(observers/fetch)"])
    ctx.print(tabulate(rows, headers=["plugin", "distribution", "version", "provides"]))
    for warning in manager.load_warnings:
        ctx.print(f"warning: {warning}")
    return 0
