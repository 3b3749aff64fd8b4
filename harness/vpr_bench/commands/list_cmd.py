"""``vpr-bench list KIND``: registered components of one kind (no torch import)."""

from __future__ import annotations

import argparse
from typing import Any

from vpr_bench.commands.context import CliContext

KINDS = ("methods", "models", "losses", "datasets", "evaluators", "trainers", "protocols")
OPTION_KINDS = ("methods", "models", "losses", "trainers")
"""The kinds whose components have config keys (``--options``)."""
_PREFIX = {"models": "model.", "losses": "loss.", "trainers": "trainer."}


def add_parser(subparsers: Any) -> None:
    """Register the ``list`` sub-command."""
    from vpr_bench.cli import add_common_options

    parser = subparsers.add_parser(
        "list",
        help="list registered methods, models, losses, datasets, evaluators, trainers or protocols",
        description="List registered components of one kind with the plugin that provides each. "
        "With --options NAME, list the config keys of one method, model, loss or trainer "
        "instead: what a profile, --config or --set may use, with type, default, range and "
        "help, read from the config dataclasses.",
        epilog="examples:\n  vpr-bench list methods\n"
        "  vpr-bench list methods --options netvlad --profile quick\n"
        "  vpr-bench list trainers --options triplet-mining",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("kind", choices=KINDS, help="which kind of component to list")
    parser.add_argument(
        "--options",
        metavar="NAME",
        help=f"the config keys of one of the {', '.join(OPTION_KINDS)} (e.g. netvlad)",
    )
    parser.add_argument(
        "--profile", help="with --options on a method: also show its values under this profile"
    )
    add_common_options(parser)


def execute(args: argparse.Namespace, ctx: CliContext) -> int:
    """Print a table of the components of ``args.kind``."""
    from tabulate import tabulate

    registries = ctx.registries()
    if getattr(args, "options", None) is not None or getattr(args, "profile", None):
        return _print_options(args, ctx)
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


def _print_options(args: argparse.Namespace, ctx: CliContext) -> int:
    """Print the config keys of ``args.options`` (a component of ``args.kind``)."""
    from tabulate import tabulate

    from vpr_bench.config_help import describe_config, method_options
    from vpr_bench.errors import UsageError
    from vpr_bench.registry import resolve

    if args.options is None:
        raise UsageError("--profile needs --options METHOD, e.g. list methods --options netvlad.")
    if args.kind not in OPTION_KINDS:
        raise UsageError(
            f"{args.kind} have no config keys; --options works with: {', '.join(OPTION_KINDS)}."
        )
    if args.profile and args.kind != "methods":
        raise UsageError("--profile belongs to a method: use list methods --options METHOD.")
    registries = ctx.registries()
    spec = registries.by_kind(args.kind).get(args.options)
    if args.kind == "methods":
        rows = method_options(spec, registries, args.profile)
    else:
        config_cls = getattr(spec, "config_cls", None)
        rows = list(describe_config(resolve(config_cls), _PREFIX[args.kind])) if config_cls else []
    if not rows:
        ctx.print(f"{args.options} has no config keys.")
        return 0
    headers = ["key", "type", "default"]
    if args.profile:
        headers.append(f"profile {args.profile}")
    headers += ["range", "help"]
    table = [
        [r.key, r.type, repr(r.default)]
        + ([repr(r.value)] if args.profile else [])
        + [r.range, r.help]
        for r in rows
    ]
    ctx.print(tabulate(table, headers=headers, maxcolwidths=[None] * (len(headers) - 1) + [60]))
    return 0
