"""``vpr-bench data``: check a dataset on disk, or prepare the embedded synthetic city."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from vpr_bench.commands.context import CliContext
from vpr_bench.errors import UsageError

HELP = "check or prepare datasets on disk"

DESCRIPTION = """\
Check that a dataset is complete on disk, or write the embedded synthetic city.

  check     load a split's metadata (.mat, CSV, file names), then check that every image it
            lists exists (and decodes, with --decode) and that the counts match the release
  prepare   render the embedded synthetic city (needs no download)

Dataset roots: --root PATH, else $VPR_BENCH_DATA/<dataset>, else the dataset's default root
(see 'vpr-bench list datasets').
"""

CHECK_EPILOG = """\
examples:
  vpr-bench data check pitts30k-test --root /data/pitts
      expects /data/pitts/datasets/pitts30k_test.mat (or /data/pitts/pitts30k_test.mat),
      /data/pitts/000/ ... and /data/pitts/queries_real/ ...
  vpr-bench data check tokyo247 --root /data/tokyo247 --decode
  VPR_BENCH_DATA=/data vpr-bench data check msls-val      (reads /data/msls/train_val/...)
  vpr-bench data check vprbench-folder --root shared/data/vpr_bench/datasets/corridor

Exit status: 0 when everything is there, 1 when a file is missing or unreadable or the counts
differ from the release (the report groups missing files by folder).
"""

PREPARE_EPILOG = """\
examples:
  vpr-bench data prepare synthcity                    the small city under the default root
  vpr-bench data prepare synthcity --size tiny --root /tmp/city
      writes /tmp/city/synthcity-tiny/
  vpr-bench data check synthcity-test --root /tmp/city/synthcity-tiny
  vpr-bench data prepare synthcity --labels           also each image's class map, under
      <city>/labels/ (de-attention's synthcity teacher; images stay the same)
"""


def add_parser(subparsers: Any) -> None:
    """Register the ``data`` sub-command with ``check`` and ``prepare``."""
    from vpr_bench.cli import add_common_options

    parser = subparsers.add_parser(
        "data",
        help=HELP,
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_common_options(parser)
    actions = parser.add_subparsers(dest="data_action", metavar="ACTION")

    check = actions.add_parser(
        "check",
        help="check that every file of a dataset split exists (and decodes)",
        description="Load a dataset split's metadata and check every image it lists.",
        epilog=CHECK_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument(
        "dataset", help="dataset, dataset-split or protocol name, e.g. pitts30k-test, tokyo247"
    )
    check.add_argument(
        "--root",
        "--data-root",
        dest="root",
        metavar="PATH",
        help="the dataset's root folder (default: $VPR_BENCH_DATA/<dataset> or its default)",
    )
    check.add_argument(
        "--decode", action="store_true", help="also decode every image (slow on big sets)"
    )
    add_common_options(check)

    prepare = actions.add_parser(
        "prepare",
        help="write a generated dataset (the synthetic city)",
        description="Render the embedded synthetic city: a deterministic, license-free street "
        "grid with database and query images under several appearance conditions.",
        epilog=PREPARE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    prepare.add_argument("name", choices=("synthcity",), help="what to prepare")
    prepare.add_argument(
        "--size",
        choices=("tiny", "small"),
        default="small",
        help="tiny: seconds on a CPU (tests, smoke runs); small: the demo city that "
        "--dataset synthcity reads (default: small)",
    )
    prepare.add_argument(
        "--root",
        "--data-root",
        dest="root",
        metavar="PATH",
        help="where to write it (default: $VPR_BENCH_DATA/synthcity or the dataset default)",
    )
    prepare.add_argument("--seed", type=int, default=0, help="render seed (default: 0)")
    prepare.add_argument(
        "--labels",
        action="store_true",
        help="also write each image's class map (renderer materials incl. sky and occluders) "
        "under <city>/labels/ as PNG; images and manifest are unchanged, an existing city gets "
        "its maps added",
    )
    add_common_options(prepare)


def execute(args: argparse.Namespace, ctx: CliContext) -> int:
    """Run ``data check`` or ``data prepare``."""
    action = getattr(args, "data_action", None)
    if action == "check":
        return _check(args, ctx)
    if action == "prepare":
        return _prepare(args, ctx)
    raise UsageError(
        "vpr-bench data needs an action: 'check DATASET --root PATH' or 'prepare synthcity'. "
        "See: vpr-bench data --help."
    )


def _check(args: argparse.Namespace, ctx: CliContext) -> int:
    from vpr_bench.data.check import check_split
    from vpr_bench.data.load import load_split, resolve_target
    from vpr_bench.data.roots import read_only

    with read_only():  # a check never writes: a generated dataset that is missing is reported
        split = load_split(resolve_target(ctx.registries(), args.dataset, args.root))
    report = check_split(split, decode=args.decode)
    for line in report.lines():
        ctx.print(line)
    return 0 if report.ok else 1


def _prepare_root(args: argparse.Namespace, ctx: CliContext) -> Path:
    from vpr_bench.data.roots import candidate_roots

    if args.root:
        return Path(args.root).expanduser()
    registries = ctx.registries()
    if "synthcity" in registries.datasets:
        candidates = candidate_roots(registries.datasets.get("synthcity"))
        if candidates:
            return candidates[0][1]
    raise UsageError(
        "Where should the synthetic city go? Pass --root PATH or set VPR_BENCH_DATA to a data "
        "folder (it is written to $VPR_BENCH_DATA/synthcity)."
    )


def _prepare(args: argparse.Namespace, ctx: CliContext) -> int:
    root = _prepare_root(args, ctx)
    from vpr_bench.atomic import check_writable_dir
    from vpr_bench.data.synthcity import prepare

    check_writable_dir(
        root,
        "--root folder" if args.root else "Synthetic city folder",
        f"Pass a folder you can write to with --root DIR (synthcity-{args.size}/ goes inside it).",
    )

    written = prepare(root, args.size, seed=args.seed, labels=args.labels)
    with_labels = " with class maps" if args.labels else ""
    ctx.print(f"synthcity ({args.size}, seed {args.seed}){with_labels} written to {written}")
    return 0
