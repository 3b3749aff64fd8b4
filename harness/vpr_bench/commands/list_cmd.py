"""``vpr-bench list KIND``: registered components of one kind (no torch import)."""

from __future__ import annotations

import argparse
from typing import Any

from vpr_bench.commands.context import CliContext

KINDS = ("methods", "models", "losses", "datasets", "evaluators", "trainers", "protocols")


def add_parser(subparsers: Any) -> None:
    """Register the ``list`` sub-command."""
    from vpr_bench.cli import add_common_options

    parser = subparsers.add_parser(
        "list",
        help="list registered methods, models, losses, datasets, evaluators, trainers or protocols",
        description="List registered components of one kind with the plugin that provides each. "
        "Example: vpr-bench list methods",
    )
    parser.add_argument("kind", choices=KINDS, help="which kind of component to list")
    add_common_options(parser)


def execute(args: argparse.Namespace, ctx: CliContext) -> int:
    """Print a table of the components of ``args.kind``."""
    from tabulate import tabulate

    registries = ctx.registries()
    if args.kind == "protocols":
        rows = [
            [
                p.name,
                f"v{p.version}",
                f"{d.name}:{p.split}",
                f"{p.db_resize.describe()} / {p.query_resize.describe()}",
                _ground_truth(p),
                p.no_positive,
                "yes" if p.place_nms else "no",
            ]
            for name, (p, d) in sorted(registries.protocols().items())
        ]
        headers = [
            "protocol",
            "version",
            "dataset:split",
            "resize db / q",
            "ground truth",
            "no positive",
            "place NMS",
        ]
        ctx.print(tabulate(rows, headers=headers) if rows else "(no protocols registered)")
        return 0
    registry = registries.by_kind(args.kind)
    rows = []
    for entry in registry.entries():
        spec = entry.spec
        detail = _detail(args.kind, spec)
        rows.append([spec.name, entry.plugin, detail, getattr(spec, "summary", "")])
    headers = [args.kind[:-1] if args.kind != "losses" else "loss", "plugin", "details", "summary"]
    ctx.print(tabulate(rows, headers=headers) if rows else f"(no {args.kind} registered)")
    return 0


def _ground_truth(protocol: Any) -> str:
    if protocol.ground_truth == "radius":
        return f"{protocol.radius_m:g} m"
    return str(protocol.ground_truth)


def _detail(kind: str, spec: Any) -> str:
    if kind == "methods":
        detail = f"{spec.model} + {spec.loss} via {spec.trainer} on {spec.train_dataset}"
        if spec.checkpoints:
            detail += "; --checkpoint " + ", ".join(c.tag for c in spec.checkpoints)
        return detail
    if kind == "losses":
        return f"batches: {spec.batch_kind.value}"
    if kind == "trainers":
        return "batches: " + ", ".join(k.value for k in spec.batch_kinds)
    if kind == "datasets":
        return "splits: " + ", ".join(spec.splits)
    if kind == "evaluators":
        return ", ".join(m.name for m in spec.metrics)
    if kind == "models":
        return "" if spec.leaderboard else "never on leaderboards"
    return ""
