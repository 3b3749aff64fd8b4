"""``vpr-bench run``: train what has no weights, evaluate, write records, refresh leaderboards."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from vpr_bench.commands.context import CliContext

HELP = "train (when no weights are given) and evaluate methods, write records, refresh leaderboards"

EPILOG = """\
Which methods run: those named by --methods, else every method of the plugins named by
--plugins (e.g. --plugins netvlad,sare runs netvlad, sare and sare-joint). Each is trained on
its config's training set (the profile chooses it; --profile quick trains on synthcity-train),
selected on its validation split, PCA-whitened when its config says so, then evaluated on
--dataset under that dataset's protocol. An untrained baseline of each distinct model
configuration is evaluated too (--no-baseline to skip). Records go to
<leaderboards>/records/<benchmark>/..., and the leaderboard pages are regenerated. The run ends
with a table of where its time went: generate, prepare, train, extract, pca, search, write.

Released weights (--checkpoint TAG; tags: vpr-bench list methods): only the method that
releases TAG runs, built as the weights need (e.g. VGG16, 64 clusters), without training or
baseline. The file is --weights FILE, else $VPR_BENCH_WEIGHTS/<method>/<TAG>/<file> (default
~/.cache/vpr-bench/weights), else torch's hub cache; --download fetches it there when it is
published as a direct link. A published sha256 is checked. PCA comes from the file, or from
pca_params_<name>.h5 beside it, else it is fitted on the training set (--train-root) and saved
there. The leaderboard shows the authors' numbers for the weights next to ours (Δ R@1).

Config keys for --set: 'vpr-bench list methods --options METHOD [--profile P]'.

The tiny synthetic city (generated in seconds): generate it, then point both the evaluation
and the training data at its folder:
  vpr-bench data prepare synthcity --size tiny --root /tmp/city
  vpr-bench run --plugins netvlad --dataset synthcity --profile quick \
      --data-root /tmp/city/synthcity-tiny --train-root /tmp/city/synthcity-tiny

examples:
  vpr-bench run --plugins netvlad,sare --dataset synthcity --profile quick
  vpr-bench run --methods sare --dataset pitts250k-test --profile paper --data-root /data/pitts
  vpr-bench run --methods netvlad --dataset tokyo247 \\
      --weights runs/netvlad/<run>/checkpoints/best.pt \\
      --trained-on pitts30k-train
  vpr-bench run --methods tiny-triplet --dataset synthcity --set trainer.epochs=1
  vpr-bench run --plugins netvlad,sare --dataset pitts250k-test --checkpoint openibl-sare-ind \
      --data-root /data/pitts --train-root /data/pitts
"""


def add_parser(subparsers: Any) -> None:
    """Register the ``run`` sub-command."""
    from vpr_bench.cli import add_common_options

    parser = subparsers.add_parser(
        "run",
        help=HELP,
        description=HELP + ".",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--dataset", required=True, help="evaluation set, e.g. synthcity")
    parser.add_argument("--methods", metavar="A,B", help="methods to run (default: see below)")
    parser.add_argument("--profile", help="config profile of every method, e.g. quick or paper")
    parser.add_argument("--config", type=Path, help="TOML experiment file ([model], [trainer]...)")
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config override, e.g. --set trainer.epochs=1 (repeatable)",
    )
    parser.add_argument("--weights", type=Path, help="evaluate these weights instead of training")
    parser.add_argument(
        "--trained-on",
        default="",
        metavar="DATASET",
        help="with --weights: the dataset the weights were trained on (recorded, shown with †)",
    )
    parser.add_argument(
        "--checkpoint",
        metavar="TAG",
        help="evaluate a method's released weights, e.g. openibl-sare-ind (see below)",
    )
    parser.add_argument(
        "--download",
        action="store_true",
        help="with --checkpoint: download the weights when they are not here",
    )
    parser.add_argument("--data-root", type=Path, help="root of the evaluation dataset")
    parser.add_argument("--train-root", type=Path, help="root of the training dataset")
    parser.add_argument(
        "--leaderboards",
        type=Path,
        default=Path("leaderboards"),
        help="leaderboard folder; records go to its records/ (default: leaderboards)",
    )
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"), help="training runs folder")
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    parser.add_argument("--seed", type=int, help="override the config's seed")
    parser.add_argument(
        "--seeds",
        type=_seed_list,
        default=(),
        metavar="S1,S2,...",
        help="train and evaluate every method once per seed; boards show mean ± std (n)",
    )
    parser.add_argument("--batch-size", type=int, default=32, help="extraction batch size")
    parser.add_argument("--no-cache", action="store_true", help="do not use the descriptor cache")
    parser.add_argument("--no-baseline", action="store_true", help="skip the untrained baselines")
    add_common_options(parser)


def execute(args: argparse.Namespace, ctx: CliContext) -> int:
    """Run the pipeline, then rebuild the leaderboards and print the page of the benchmark."""
    from vpr_bench.errors import UsageError
    from vpr_bench.leaderboard import build_leaderboards, write_outputs
    from vpr_bench.pipeline.execute import execute_plan
    from vpr_bench.pipeline.options import RunOptions
    from vpr_bench.pipeline.plan import plan_run, select_methods
    from vpr_bench.timing import clock, phase, phase_table

    clock.reset()
    if args.checkpoint and args.trained_on:
        raise UsageError(
            "--trained-on is for your own --weights; a --checkpoint says what it was trained on."
        )
    if args.download and not args.checkpoint:
        raise UsageError("--download fetches released weights: use it with --checkpoint TAG.")

    manager = ctx.manager()
    names = [n.strip() for n in args.methods.split(",")] if args.methods else None
    allow = [n.strip() for n in args.plugins.split(",")] if args.plugins else None
    registries = manager.registries()
    methods = select_methods(registries, names, allow)
    records_dir = args.leaderboards / "records"
    options = RunOptions(
        dataset=args.dataset,
        data_root=args.data_root,
        train_root=args.train_root,
        profile=args.profile,
        config_file=args.config,
        sets=tuple(args.sets),
        weights=args.weights,
        trained_on=args.trained_on,
        records_dir=records_dir,
        runs_dir=args.runs_dir,
        seeds=args.seeds,
        device=args.device,
        seed=args.seed,
        baseline=not args.no_baseline,
        batch_size=args.batch_size,
        use_cache=not args.no_cache,
        command=shlex.join(["vpr-bench", *sys.argv[1:]]),
        checkpoint=args.checkpoint,
        download=args.download,
    )
    plan = plan_run(registries, methods, options)
    if args.checkpoint:
        ctx.print(f"Evaluating checkpoint {args.checkpoint} on {args.dataset}")
    else:
        ctx.print(f"Running {', '.join(m.method.name for m in plan.methods)} on {args.dataset}")
    outcomes = execute_plan(manager, plan)
    for outcome in outcomes:
        record = outcome.record
        metrics = "  ".join(f"{k} {v:.1f}" for k, v in record.metrics.items() if k.startswith("R@"))
        tag = record.checkpoint_tag
        if record.baseline_of:
            tag += f", config of {record.baseline_of}"
        ctx.print(f"{record.method} [{tag}]: {metrics}  -> {outcome.record_path}")
    with phase("write"):
        result = build_leaderboards(records_dir, registries)
        write_outputs(args.leaderboards, result)
    benchmark = outcomes[0].record.benchmark if outcomes else ""
    page = args.leaderboards / f"{benchmark}.md"
    if page.is_file():
        ctx.print("")
        ctx.print(page.read_text(encoding="utf-8"))
    for problem in result.problems:
        ctx.print(f"warning: skipped bad record: {problem}")
    ctx.print("")
    ctx.print("Where the time went (wall clock; a nested phase's time is not its parent's):")
    ctx.print(phase_table(clock, clock.elapsed()))
    return 1 if result.problems else 0


def _seed_list(text: str) -> tuple[int, ...]:
    """``"0,1,2"`` -> ``(0, 1, 2)`` (argparse type of ``--seeds``)."""
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers such as 0,1,2, got {text!r}"
        ) from None
