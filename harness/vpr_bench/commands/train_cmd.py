"""``vpr-bench train``: train a method on a training dataset."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from vpr_bench.commands.context import CliContext

HELP = "train a method on a training dataset"

EPILOG = """\
A run writes to RUNS_DIR/<method>/<UTC time>/: config.json (the resolved config), train.log,
events.jsonl, checkpoints/{last,best,final}.pt (+ .json sidecars) and summary.json. The best
checkpoint is chosen on the dataset's val split (never a test split). Ctrl-C saves a checkpoint
and exits with code 130; continue with --resume RUN_DIR.

Config keys (for --set, --config tables and profiles): seed, train_dataset, val_dataset,
pca_dim, model.*, loss.*, trainer.*; 'vpr-bench list methods --options METHOD [--profile P]'
prints each with its type, default, range and help.

examples:
  vpr-bench train tiny-triplet --dataset synthcity-train --profile quick
  vpr-bench train tiny-triplet --set trainer.epochs=3 --set trainer.lr=0.01 --device cpu
  vpr-bench train netvlad --dataset pitts30k-train --data-root ~/data/pitts30k --config exp.toml
  vpr-bench train tiny-triplet --resume runs/tiny-triplet/20250101T120000Z
  torchrun --nproc_per_node=4 -m vpr_bench train netvlad --dataset pitts30k-train
"""


def add_parser(subparsers: Any) -> None:
    """Register the ``train`` sub-command."""
    from vpr_bench.cli import add_common_options

    parser = subparsers.add_parser(
        "train",
        help=HELP,
        description=HELP + ".",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("method", help="the method to train (see: vpr-bench list methods)")
    parser.add_argument(
        "--dataset", help="training set, e.g. synthcity-train (default: the method's)"
    )
    parser.add_argument("--data-root", type=Path, help="dataset folder (default: its default root)")
    parser.add_argument("--config", type=Path, help="TOML file with [model], [loss], [trainer]")
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one option, e.g. trainer.lr=0.01 (repeatable)",
    )
    parser.add_argument("--profile", help="a named override set of the method, e.g. quick")
    parser.add_argument(
        "--resume",
        type=Path,
        metavar="RUN_DIR",
        help="continue the run in RUN_DIR from its last checkpoint",
    )
    parser.add_argument(
        "--runs-dir",
        type=Path,
        default=Path("runs"),
        help="parent folder of run folders (default: runs)",
    )
    parser.add_argument("--device", help="auto, cpu, cuda or cuda:N (default: the config's)")
    parser.add_argument("--seed", type=int, help="seed of every random number generator")
    add_common_options(parser)


def execute(args: argparse.Namespace, ctx: CliContext) -> int:
    """Train, print where the results are, return 0 (130 after Ctrl-C, via the error)."""
    from vpr_bench.device import resolve_device
    from vpr_bench.errors import UsageError
    from vpr_bench.experiment import resolve_experiment
    from vpr_bench.train.api import (
        check_run_folder,
        load_training_data,
        resume_training,
        train_method,
    )

    logging.getLogger("vpr_bench.run").setLevel(logging.INFO)
    manager = ctx.manager()
    registries = manager.registries()
    method = registries.methods.get(args.method)
    if args.device is not None:
        resolve_device(args.device)  # a device that is not here fails before any work
    if args.resume is not None:
        if args.profile or args.config or args.sets or args.seed is not None:
            raise UsageError(
                "--resume continues a run with its saved config.json; drop --profile, --config, "
                "--set and --seed (start a new run to change the config)."
            )
        outcome = resume_training(
            method, registries, args.resume, device=args.device, emit=manager.emit
        )
    else:
        config = resolve_experiment(
            method,
            registries,
            profile=args.profile,
            config_file=args.config,
            sets=args.sets,
            extra={"seed": args.seed} if args.seed is not None else None,
        )
        if args.device is not None:
            config.device = args.device
        dataset = args.dataset or config.train_dataset or method.train_dataset
        registries.check_method(method, dataset)
        check_run_folder(args.runs_dir)  # before the data is read
        data = load_training_data(
            method, registries, config, dataset_name=dataset, data_root=args.data_root
        )
        outcome = train_method(
            method, registries, config, data, runs_dir=args.runs_dir, emit=manager.emit
        )
    ctx.print(f"run folder:       {outcome.run_dir}")
    ctx.print(f"final checkpoint: {outcome.final_checkpoint}")
    if outcome.best_checkpoint is not None:
        metrics = ", ".join(f"{k} {v:.2f}" for k, v in outcome.best_val.items())
        ctx.print(f"best checkpoint:  {outcome.best_checkpoint} ({metrics})")
    return 0
