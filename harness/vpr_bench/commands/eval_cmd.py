"""``vpr-bench eval``: evaluate a method or model on a dataset under its protocol."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from vpr_bench.commands.context import CliContext
from vpr_bench.errors import UsageError, VprBenchError

HELP = "evaluate a method or model on a dataset under its protocol"

DESCRIPTION = """\
Evaluate a method (or a bare model) on one dataset split under the split's evaluation protocol:
extract database and query descriptors (cached on disk), search the nearest neighbours once,
compute R@N, mAP@N, precision-recall metrics and every installed evaluator, and write

  <out>/<benchmark>/<method>.<tag>/<dataset>.<split>.<data>.json             the EvalRecord
  <out>/<benchmark>/<method>.<tag>/<dataset>.<split>.<data>.predictions.npz  top-K + ground truth
  <out>/<benchmark>/<method>.<tag>/<dataset>.<split>.<data>.grid.png         with --save-grid N

where <data> is the data folder's name and a digest of its images and ground truth.

A predictions file recomputes the metrics without images or model (--from-predictions).
Descriptors are cached under $VPR_BENCH_CACHE (default ~/.cache/vpr-bench/descriptors), keyed
by the weights, the image list, the resize policy, preprocessing and precision.
Under torchrun, extraction is sharded over the ranks and rank 0 writes the outputs.
"""

EPILOG = """\
examples:
  vpr-bench eval tiny-gem --dataset vprbench-folder \\
      --data-root ~/data/VPR-Bench/datasets/corridor --save-grid 4 --out results
  vpr-bench eval netvlad --dataset pitts30k-test --weights vgg16_netvlad.pth --device cuda
  vpr-bench eval netvlad --dataset tokyo247 --protocol tokyo247-vg --weights w.pth
  vpr-bench eval netvlad --dataset pitts30k-test --weights w.pth \\
      --records leaderboards/records --benchmark pittsburgh
  vpr-bench eval --from-predictions results/corridor/.../vprbench-folder.test.predictions.npz
  torchrun --nproc_per_node 4 -m vpr_bench eval netvlad --dataset pitts250k-test --weights w.pth

names: 'vpr-bench list methods', 'list models', 'list datasets' and 'list protocols' show
what can be evaluated; --dataset takes a dataset (its default split), 'dataset-split' or a
protocol name.
"""


def add_parser(subparsers: Any) -> None:
    """Register the ``eval`` sub-command."""
    from vpr_bench.cli import add_common_options

    parser = subparsers.add_parser(
        "eval",
        help=HELP,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "name",
        nargs="?",
        metavar="METHOD-OR-MODEL",
        help="a registered method (model built from its spec) or model (e.g. tiny-gem)",
    )
    what = parser.add_argument_group("what to evaluate")
    what.add_argument("--dataset", help="dataset, dataset-split or protocol name (required)")
    what.add_argument(
        "--protocol", help="one of the dataset's protocols (default: the split's protocol)"
    )
    what.add_argument("--weights", type=Path, help="a weights file (torch.save of a state dict)")
    what.add_argument(
        "--checkpoint-tag", help="with --weights: tag of the weights in the record (default: stem)"
    )
    what.add_argument(
        "--checkpoint",
        metavar="TAG",
        help="released weights are evaluated by 'vpr-bench run --checkpoint TAG' (see there)",
    )
    what.add_argument("--profile", help="a profile of the method (its model options)")
    what.add_argument("--data-root", type=Path, help="dataset folder (default: $VPR_BENCH_DATA/..)")
    how = parser.add_argument_group("how")
    how.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: auto)")
    how.add_argument("--batch-size", type=int, default=32, help="images per batch (default 32)")
    how.add_argument("--num-workers", type=int, default=0, help="image decoding workers")
    how.add_argument(
        "--precision",
        choices=("fp32", "bf16", "fp16"),
        default="fp32",
        help="fp32 (default, protocol parity), or bf16/fp16 autocast (recorded)",
    )
    how.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")
    how.add_argument("--cache-dir", type=Path, help="descriptor cache folder")
    how.add_argument("--seed", type=int, default=0, help="seed recorded in the provenance")
    out = parser.add_argument_group("outputs")
    out.add_argument("--out", type=Path, default=Path("results"), help="output folder")
    out.add_argument(
        "--records", type=Path, help="write the record here instead (e.g. leaderboards/records)"
    )
    out.add_argument("--benchmark", help="leaderboard group of the record (default: dataset)")
    out.add_argument(
        "--save-grid", type=int, default=0, metavar="N", help="render a PNG grid of N queries"
    )
    out.add_argument(
        "--from-predictions",
        type=Path,
        metavar="FILE",
        help="recompute the metrics of a predictions file (no model, no images)",
    )
    add_common_options(parser)


def execute(args: argparse.Namespace, ctx: CliContext) -> int:
    """Evaluate, or recompute metrics from a predictions file; print the metrics."""
    if args.from_predictions is not None:
        return _recompute(args, ctx)
    if args.checkpoint:
        raise UsageError(
            f"Released weights are evaluated by 'vpr-bench run --methods "
            f"{args.name or 'METHOD'} --checkpoint {args.checkpoint} --dataset "
            f"{args.dataset or 'D'}': it builds the model they need, verifies the file and "
            f"applies their PCA. 'vpr-bench eval' takes your own files with --weights."
        )
    if args.checkpoint_tag and args.weights is None:
        raise UsageError(
            "--checkpoint-tag names the weights given with --weights; without --weights the "
            "model is untrained and its record is tagged 'untrained'."
        )
    if not args.name or not args.dataset:
        raise UsageError(
            "vpr-bench eval needs METHOD-OR-MODEL and --dataset, e.g. "
            "'vpr-bench eval tiny-gem --dataset synthcity' (or --from-predictions FILE)."
        )
    from vpr_bench.eval.distributed import shutdown
    from vpr_bench.pipeline.eval_request import EvalRequest, run_request

    request = EvalRequest(
        name=args.name,
        dataset=args.dataset,
        out_dir=args.out,
        protocol=args.protocol,
        weights=args.weights,
        data_root=args.data_root,
        device=args.device,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        precision=args.precision,
        use_cache=not args.no_cache,
        cache_dir=args.cache_dir,
        save_grid=args.save_grid,
        records_dir=args.records,
        benchmark=args.benchmark,
        checkpoint_tag=args.checkpoint_tag,
        profile=args.profile,
        seed=args.seed,
    )
    try:
        outcome = run_request(ctx.registries(), request)
    finally:
        shutdown()
    if outcome is None:  # another torchrun rank: rank 0 reports
        return 0
    record = outcome.record
    ctx.print(
        f"{record.method} [{record.checkpoint_tag}] on {record.dataset}-{record.split} "
        f"({record.protocol_key})"
    )
    _print_metrics(ctx, record.metrics, record.counts)
    ctx.print(
        f"extraction {record.timing.images_per_s:.1f} img/s, search "
        f"{record.timing.search_ms_per_query:.3f} ms/query, peak host "
        f"{record.timing.peak_host_mb:.0f} MiB"
    )
    ctx.print(f"record:      {outcome.record_path}")
    ctx.print(f"predictions: {outcome.predictions_path}")
    if outcome.grid_path is not None:
        ctx.print(f"grid:        {outcome.grid_path}")
    return 0


def _print_metrics(ctx: CliContext, metrics: Any, counts: Any) -> None:
    from tabulate import tabulate

    ctx.print(tabulate([[k, f"{v:.2f}"] for k, v in metrics.items()], headers=["metric", "value"]))
    ctx.print(", ".join(f"{k}={v}" for k, v in counts.items()))


def _recompute(args: argparse.Namespace, ctx: CliContext) -> int:
    from vpr_bench.pipeline.eval_request import recompute_from_file

    predictions, metrics, _ = recompute_from_file(ctx.registries(), args.from_predictions)
    ctx.print(f"recomputed from {args.from_predictions}")
    _print_metrics(ctx, metrics, predictions.counts)
    stored = dict(predictions.metrics)
    differ = sorted(
        k
        for k in set(stored) | set(metrics)
        if abs(stored.get(k, -1e9) - metrics.get(k, 1e9)) > 1e-9
    )
    if differ:
        cause = (
            "Its entries are as written (their digests match), so the metric code changed "
            "since the file was written: compare the vpr-bench versions."
            if predictions.verified
            else "The file predates entry digests, so it cannot tell whether it was edited or "
            "the metric code changed since it was written: evaluate again to get a verifiable "
            "file."
        )
        raise VprBenchError(
            f"Recomputed metrics differ from those stored in {args.from_predictions}: "
            f"{', '.join(differ)}. {cause}"
        )
    ctx.print("matches the metrics stored with the predictions")
    return 0
