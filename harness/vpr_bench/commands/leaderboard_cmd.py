"""``vpr-bench leaderboard build``: markdown leaderboards and plots from result records."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from vpr_bench.commands.context import CliContext

HELP = "build markdown leaderboards and plots from result records"

DEFAULT_RECORDS = "leaderboards/records"
DEFAULT_OUT = "leaderboards"

BUILD_DESCRIPTION = """\
Collect every result record under --records (laid out as
<benchmark>/<method>.<tag>/<dataset>.<split>.<data>.json, as 'vpr-bench run' and 'vpr-bench eval'
write them), validate each, and write one page per benchmark to <out>/<benchmark>.md, with
plots in <out>/plots/ (SVG and PNG).

Each page has one table per evaluation protocol (name@vN and its digest) and tested
dataset/split, so numbers made under different protocols never share a column. Rows are sorted
by R@1. Published numbers of the installed methods (their plugin specs) appear as rows marked
'paper' with their source, and a 'Δ R@1' column gives ours minus paper. A dagger (†) marks
weights evaluated on the dataset they were trained on. Records with leaderboard=False
(test-only models) are never shown; the page says how many were hidden.

A record file that is not valid is reported by name and skipped, and the exit code is 1.
The pages are generated: never edit them, regenerate them.

exit codes: 0 success; 1 a bad record file, or (with --check) stale files; 2 usage error.

examples:
  vpr-bench leaderboard build                    regenerate leaderboards/*.md from the records
  vpr-bench leaderboard build --check            fail (exit 1) if the committed pages are stale
  vpr-bench leaderboard build --records runs/records --out runs/leaderboards
  vpr-bench leaderboard build --html             also write leaderboards/site/index.html
"""


def add_parser(subparsers: Any) -> None:
    """Register the ``leaderboard`` sub-command and its ``build`` action."""
    from vpr_bench.cli import add_common_options

    parser = subparsers.add_parser(
        "leaderboard",
        help=HELP,
        description=HELP + ". Example: vpr-bench leaderboard build --check",
    )
    add_common_options(parser)
    actions = parser.add_subparsers(dest="leaderboard_action", metavar="ACTION", required=True)
    build = actions.add_parser(
        "build",
        help="regenerate (or with --check, verify) the leaderboard pages",
        description=BUILD_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    build.add_argument(
        "--records",
        metavar="DIR",
        default=DEFAULT_RECORDS,
        help=f"the records folder to read (default: {DEFAULT_RECORDS}, relative to the "
        "current directory)",
    )
    build.add_argument(
        "--out",
        metavar="DIR",
        default=DEFAULT_OUT,
        help=f"where <benchmark>.md and plots/ go (default: {DEFAULT_OUT})",
    )
    build.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 and list the stale files when the pages (or plots) on disk "
        "differ from what the records generate",
    )
    build.add_argument(
        "--no-plots",
        action="store_true",
        help="build (or check) the markdown only; plots on disk are left alone. Use it where "
        "matplotlib differs from the one that made the committed plots (plot bytes depend on "
        "the matplotlib and FreeType versions; the markdown does not)",
    )
    build.add_argument(
        "--html",
        action="store_true",
        help="also write a static site to <out>/site/: index.html and one page per benchmark, "
        "sortable columns, filters per protocol and trained-on dataset, plots inline, numbers "
        "linking to their records; open <out>/site/index.html in a browser (works from file://)",
    )
    add_common_options(build)


def _command_line(args: argparse.Namespace) -> str:
    parts = ["vpr-bench leaderboard build"]
    if args.records != DEFAULT_RECORDS:
        parts.append(f"--records {args.records}")
    if args.out != DEFAULT_OUT:
        parts.append(f"--out {args.out}")
    return " ".join(parts)


def execute(args: argparse.Namespace, ctx: CliContext) -> int:
    """Build, or check, the leaderboard pages; see the ``build`` help for exit codes."""
    from vpr_bench.leaderboard import build_leaderboards, stale_files, write_outputs

    out = Path(args.out)
    if not args.check:  # before the records are read and the plots drawn
        from vpr_bench.atomic import check_writable_dir

        check_writable_dir(out, "--out folder", "Pass a folder you can write to with --out DIR.")
    result = build_leaderboards(
        Path(args.records),
        ctx.registries(),
        command=_command_line(args),
        plots=not args.no_plots,
        html_dir=out if args.html else None,
    )
    for problem in result.problems:
        print(f"error: skipped bad record: {problem.message}", file=sys.stderr)
    summary = (
        f"{result.shown} record(s) shown, {result.hidden} hidden (leaderboard=False), "
        f"{len(result.problems)} bad file(s) skipped"
    )
    if args.check:
        stale = stale_files(out, result)
        if stale:
            ctx.print(f"Stale leaderboard files in {out} ({summary}):")
            for name in stale:
                ctx.print(f"  {name}")
            ctx.print(f"Regenerate them with: {_command_line(args)}")
            return 1
        ctx.print(f"Leaderboards in {out} are up to date ({summary}).")
        return 1 if result.problems else 0
    written, removed = write_outputs(out, result)
    unchanged = len(result.files) - len(written)
    ctx.print(
        f"Wrote {len(written)} file(s) to {out} ({unchanged} unchanged, {len(removed)} removed); "
        f"{summary}."
    )
    for name in written:
        ctx.print(f"  wrote {name}")
    for name in removed:
        ctx.print(f"  removed {name}")
    return 1 if result.problems else 0
