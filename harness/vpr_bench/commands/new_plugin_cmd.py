"""``vpr-bench new-plugin NAME``: write a complete, installable plugin package."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from vpr_bench.commands.context import CliContext

HELP = "write a new plugin package (a method or a dataset) that installs and passes its checks"

EPILOG = """\
A method plugin holds a model (vpr-bench's tiny trunk with a GeM head of its own), a margin loss
on mined tuples, a method with a CPU-sized 'quick' profile, tests on the conformance kit and a
README. A dataset plugin holds a reader of database.csv/queries.csv folders, its protocol, an
example-folder writer, tests and a README. Both install and pass their checks as written; edit
from there.

examples:
  vpr-bench new-plugin acme-vlad --dir ~/src
  cd ~/src/acme-vlad && pip install -e . && vpr-bench check acme-vlad && pytest tests
  vpr-bench new-plugin street-csv --kind dataset
"""


def add_parser(subparsers: Any) -> None:
    """Register the ``new-plugin`` sub-command."""
    from vpr_bench.cli import add_common_options
    from vpr_bench.scaffold import KINDS

    parser = subparsers.add_parser(
        "new-plugin",
        help=HELP,
        description=HELP + ".",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("name", help="plugin name, lower-kebab (e.g. acme-vlad)")
    parser.add_argument("--kind", choices=KINDS, default="method", help="what the plugin adds")
    parser.add_argument(
        "--dir", type=Path, default=Path("."), help="parent folder of the new package (default: .)"
    )
    add_common_options(parser)


def execute(args: argparse.Namespace, ctx: CliContext) -> int:
    """Write the package and say what to do next."""
    from vpr_bench.scaffold import plugin_names, write_plugin

    root = write_plugin(args.name, args.kind, args.dir)
    names = plugin_names(args.name)
    ctx.print(f"Wrote {args.kind} plugin {names.distribution} in {root}")
    ctx.print("Next:")
    ctx.print(f"  cd {root} && pip install -e .")
    if args.kind == "method":
        ctx.print(f"  vpr-bench check {names.name} && pytest tests")
        ctx.print(f"  vpr-bench list methods --options {names.name} --profile quick")
    else:
        ctx.print("  pytest tests")
        ctx.print(f"  vpr-bench data check {names.name} --root FOLDER")
    return 0
