"""``vpr-bench run`` resolved once: :class:`RunPlan`.

Every name is looked up and every config resolved here, before any heavy work, so a bad name
or value fails in a second rather than after an hour of training. The rest of the run reads
the plan and never resolves a name, a config or a dataset again.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vpr_bench.data.load import SplitLoader, SplitTarget, resolve_target
from vpr_bench.errors import UnknownNameError, UsageError
from vpr_bench.experiment import ExperimentConfig, resolve_experiment
from vpr_bench.pipeline.options import RunOptions
from vpr_bench.specs import Checkpoint, MethodSpec, normalize_name

if TYPE_CHECKING:
    import torch

    from vpr_bench.registry import Registries

__all__ = [
    "MethodPlan",
    "RunPlan",
    "check_trained_on",
    "order_methods",
    "plan_run",
    "select_methods",
]


@dataclass(frozen=True)
class MethodPlan:
    """One method to run and its fully resolved config."""

    method: MethodSpec
    config: ExperimentConfig


@dataclass(frozen=True)
class RunPlan:
    """A whole ``vpr-bench run``, resolved.

    Attributes:
        methods: The methods in run order, each with its resolved config (a method once per
            seed with ``--seeds``).
        target: The evaluation dataset, split, folder and protocol.
        device: The resolved torch device.
        options: The run's options.
        checkpoint: The released weights to evaluate (``--checkpoint``), else None.
        splits: Loads each dataset split of the run once.
    """

    methods: tuple[MethodPlan, ...]
    target: SplitTarget
    device: torch.device
    options: RunOptions
    checkpoint: Checkpoint | None = None
    splits: SplitLoader = field(default_factory=SplitLoader)


def select_methods(
    registries: Registries, names: Sequence[str] | None, allow: Sequence[str] | None
) -> list[MethodSpec]:
    """The methods to run: those named, else every method of the allowed entry-point plugins.

    Raises:
        UnknownNameError: A named method is not registered.
        UsageError: Nothing to run.
    """
    if names:
        return order_methods([registries.methods.get(name) for name in names])
    allowed = set(allow or [])
    chosen = [
        entry.spec
        for entry in registries.methods.entries()
        if entry.spec.leaderboard and (entry.plugin in allowed if allowed else True)
    ]
    if not chosen:
        raise UsageError(
            "No method to run: name some with --methods, or load method plugins with "
            "--plugins (see: vpr-bench list methods)."
        )
    return order_methods(chosen)


def order_methods(methods: Sequence[MethodSpec]) -> list[MethodSpec]:
    """``methods`` in their order, except that each runs after the ones it names in ``after``.

    A stable order: a method moves behind the methods of this run it reuses (``MethodSpec.
    after``), everything else keeps its place; names not in the run are ignored.
    """
    pending = list(methods)
    present = {m.name for m in pending}
    ordered: list[MethodSpec] = []
    done: set[str] = set()
    while pending:
        ready = next(
            (m for m in pending if all(a in done or a not in present for a in m.after)),
            pending[0],  # a cycle: keep the given order rather than loop
        )
        pending.remove(ready)
        ordered.append(ready)
        done.add(ready.name)
    return ordered


def plan_run(registries: Registries, methods: Sequence[MethodSpec], options: RunOptions) -> RunPlan:
    """Resolve the run: methods, configs, evaluation target and device.

    Raises:
        UnknownNameError, IncompatibleError, ConfigError: A bad name, part or value.
        UsageError: ``--weights`` with several methods, a split without a protocol, a
            device that is not here.
    """
    from vpr_bench.device import resolve_device

    checkpoint: Checkpoint | None = None
    if options.checkpoint:
        owner, checkpoint = _checkpoint_owner(registries, methods, options.checkpoint)
        methods = [owner]
    if options.weights is not None and len(methods) != 1:
        raise UsageError("--weights needs exactly one method (choose it with --methods NAME).")
    if options.trained_on:
        check_trained_on(registries, options.trained_on, options.weights)
    target = resolve_target(registries, options.dataset, options.data_root)
    target.require_protocol()
    seeds: list[int | None] = list(options.seeds) or [options.seed]
    layers = []
    if checkpoint is not None:
        needs = {**checkpoint.overrides, "train_dataset": checkpoint.trained_on}
        layers.append((f"checkpoint {checkpoint.tag!r}", needs))
    plans = []
    for method in methods:
        for seed in seeds:
            extra: dict[str, Any] = {} if seed is None else {"seed": seed}
            config = resolve_experiment(
                method,
                registries,
                profile=options.profile,
                config_file=options.config_file,
                sets=options.sets,
                extra=extra,
                layers=layers,
            )
            if checkpoint is None and options.weights is None:
                registries.check_method(method, config.train_dataset)
            plans.append(MethodPlan(method, config))
    device = resolve_device(options.device)
    return RunPlan(tuple(plans), target, device, options, checkpoint)


def _checkpoint_owner(
    registries: Registries, methods: Sequence[MethodSpec], tag: str
) -> tuple[MethodSpec, Checkpoint]:
    from vpr_bench.weights import find_checkpoint

    try:
        return find_checkpoint(methods, tag)
    except UnknownNameError:
        elsewhere = [
            entry.spec.name
            for entry in registries.methods.entries()
            if any(c.tag == tag for c in entry.spec.checkpoints)
        ]
        if not elsewhere:
            raise
        raise UsageError(
            f"Checkpoint {tag!r} is released by method {elsewhere[0]!r}, which is not among "
            f"this run's methods ({', '.join(m.name for m in methods)}); run it with "
            f"--methods {elsewhere[0]}."
        ) from None


def check_trained_on(registries: Registries, trained_on: str, weights: Path | None) -> None:
    """Check ``--trained-on``: a registered dataset that the weights' own sidecar agrees with.

    The sidecar is the JSON file vpr-bench writes beside every checkpoint
    (``final.pt`` -> ``final.json``); its ``config.dataset`` is the training set.

    Raises:
        UnknownNameError: No dataset has that name (with a suggestion).
        UsageError: The sidecar names another training set.
    """
    try:
        spec, split = registries.dataset_split(trained_on)
    except UnknownNameError as exc:
        raise UnknownNameError(
            "dataset",
            trained_on,
            exc.known,
            hint="--trained-on takes a dataset name from `vpr-bench list datasets`.",
        ) from None
    if weights is None:
        return
    sidecar = Path(weights).with_suffix(".json")
    try:
        recorded = json.loads(sidecar.read_text(encoding="utf-8"))["config"]["dataset"]
        their_spec, their_split = registries.dataset_split(str(recorded))
    except (OSError, ValueError, KeyError, TypeError, UnknownNameError):
        return  # no readable sidecar (weights from elsewhere): the user's word stands
    explicit_split = normalize_name(trained_on) != spec.name
    if spec.name != their_spec.name or (explicit_split and split != their_split):
        raise UsageError(
            f"--trained-on {trained_on} contradicts {sidecar}, which says these weights were "
            f"trained on {recorded}; pass --trained-on {recorded} (or drop --trained-on)."
        )
