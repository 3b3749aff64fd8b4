"""The hooks a vpr-bench plugin implements.

A plugin is a module (or object) with functions marked ``@vpr_bench.hookimpl`` whose names are
hook names below. Registration hooks take no arguments and yield typed records from
:mod:`vpr_bench.specs` (pure data: cheap to list, conflicts detectable). Publish a plugin with an
entry point in group ``vpr_bench``::

    [project.entry-points.vpr_bench]
    mymethod = "vpr_bench_mymethod.plugin"

Nothing heavy is imported here, so listing plugins stays instant.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pluggy

from vpr_bench.specs import (
    DatasetSpec,
    EvaluatorSpec,
    LossSpec,
    MethodSpec,
    ModelSpec,
    TrainerSpec,
)

if TYPE_CHECKING:
    from vpr_bench.runtime import RunEvent

PROJECT = "vpr_bench"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

_Hook = TypeVar("_Hook", bound=Callable[..., Any])

REGISTRATION_HOOKS: dict[str, str] = {}
"""Registration hook name -> the registry kind it fills (declared by :func:`_registers`)."""

_SPEC_TYPES: dict[str, type] = {}


def _registers(kind: str, spec_type: type) -> Callable[[_Hook], _Hook]:
    """Declare, in one place, the registry kind a registration hook fills and its spec type."""

    def declare(hook: _Hook) -> _Hook:
        REGISTRATION_HOOKS[hook.__name__] = kind
        _SPEC_TYPES[hook.__name__] = spec_type
        return hook

    return declare


def spec_type(hook_name: str) -> type:
    """The spec type a registration hook must yield (``vpr_bench_models`` -> ``ModelSpec``)."""
    return _SPEC_TYPES[hook_name]


def hook_names() -> list[str]:
    """Every hook name a plugin may implement."""
    return sorted(name for name in globals() if name.startswith(f"{PROJECT}_"))


@hookspec
@_registers("models", ModelSpec)
def vpr_bench_models() -> Iterable[ModelSpec]:  # type: ignore[empty-body]
    """Register models (backbone + aggregation -> L2-normalised descriptor).

    Example::

        # my_plugin.py
        from dataclasses import dataclass
        import torch
        from vpr_bench import ModelSpec, hookimpl

        @dataclass
        class MeanColourConfig:
            pass

        class MeanColour(torch.nn.Module):
            descriptor_dim = 3

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return torch.nn.functional.normalize(x.mean(dim=(2, 3)), dim=1)

        @hookimpl
        def vpr_bench_models():
            yield ModelSpec(
                name="mean-colour",
                build=lambda cfg: MeanColour(),
                config_cls=MeanColourConfig,
                summary="Mean RGB colour (a toy baseline)",
                leaderboard=False,
            )
    """


@hookspec
@_registers("losses", LossSpec)
def vpr_bench_losses() -> Iterable[LossSpec]:  # type: ignore[empty-body]
    """Register training losses, each declaring the batch kind it consumes.

    Example::

        from dataclasses import dataclass
        import torch
        from vpr_bench import BatchKind, LossSpec, hookimpl

        @dataclass
        class ContrastiveConfig:
            margin: float = 0.5

        class Contrastive(torch.nn.Module):
            def __init__(self, cfg: ContrastiveConfig) -> None:
                super().__init__()
                self.margin = cfg.margin

            def forward(self, anchors, positives, negatives):
                d_pos = (anchors - positives).norm(dim=-1)
                d_neg = (anchors[:, None] - negatives).norm(dim=-1)
                return (d_pos.pow(2).mean() + (self.margin - d_neg).clamp(min=0).pow(2).mean())

        @hookimpl
        def vpr_bench_losses():
            yield LossSpec("contrastive", build=Contrastive, config_cls=ContrastiveConfig,
                           batch_kind=BatchKind.TUPLES, summary="Pairwise contrastive loss")
    """


@hookspec
@_registers("datasets", DatasetSpec)
def vpr_bench_datasets() -> Iterable[DatasetSpec]:  # type: ignore[empty-body]
    """Register datasets: a reader of an on-disk format and the protocols of its splits.

    Example::

        from pathlib import Path
        from vpr_bench import DatasetSpec, EvalProtocol, ResizePolicy, hookimpl
        from vpr_bench.data import GeoSplit, ImageRecord

        def load(root: Path, split: str) -> GeoSplit:
            def records(folder: str) -> tuple[ImageRecord, ...]:
                return tuple(
                    ImageRecord(path=p, easting=float(p.stem), northing=0.0)
                    for p in sorted((root / folder).glob("*.jpg"))
                )
            return GeoSplit(name=f"corridor-line-{split}", database=records("db"),
                            queries=records("q"), root=root,
                            protocol=PROTOCOL)

        PROTOCOL = EvalProtocol("corridor-line-test", split="test", radius_m=2.0)

        @hookimpl
        def vpr_bench_datasets():
            yield DatasetSpec(name="corridor-line", version=1, splits=("test",), load=load,
                              protocols=(PROTOCOL,), summary="Images named by metre mark")
    """


@hookspec
@_registers("evaluators", EvaluatorSpec)
def vpr_bench_evaluators() -> Iterable[EvaluatorSpec]:  # type: ignore[empty-body]
    """Register metric families computed from the shared kNN result.

    Example::

        import numpy as np
        from vpr_bench import EvaluatorSpec, MetricSpec, hookimpl

        def top1_distance(result, protocol) -> dict[str, float]:
            return {"mean-top1-dist": float(np.mean(result.knn_dist[:, 0]))}

        @hookimpl
        def vpr_bench_evaluators():
            yield EvaluatorSpec(
                name="top1-distance",
                metrics=(MetricSpec("mean-top1-dist", "Mean L2 distance of the first hit",
                                    higher_is_better=False, unit=""),),
                compute=top1_distance,
                requires_knn=1,
            )
    """


@hookspec
@_registers("trainers", TrainerSpec)
def vpr_bench_trainers() -> Iterable[TrainerSpec]:  # type: ignore[empty-body]
    """Register training procedures.

    Example::

        from vpr_bench import BatchKind, TrainerSpec, hookimpl

        @hookimpl
        def vpr_bench_trainers():
            # fit(context) -> outcome; see vpr_bench.train for the context it receives.
            yield TrainerSpec(name="my-generations", fit="my_plugin.train:fit",
                              batch_kinds=(BatchKind.TUPLES,),
                              summary="Self-distillation over generations")
    """


@hookspec
@_registers("methods", MethodSpec)
def vpr_bench_methods() -> Iterable[MethodSpec]:  # type: ignore[empty-body]
    """Register methods: the leaderboard unit, naming a model, loss, trainer and training set.

    Weights released in the authors' own layout: declare ``weights_loader="pkg.mod:fn"``, where
    ``fn(path, model) -> PcaWhitening | None`` loads such a file strictly (read it with
    :func:`vpr_bench.weights.safe_load`, check it with :func:`vpr_bench.weights.compare_keys`)
    and returns the PCA-whitening stored in it, if any. ``--weights FILE`` (``eval``, ``run``)
    tries the vpr-bench layout first and falls back to this loader.

    Example::

        from vpr_bench import MethodSpec, PaperResult, hookimpl

        @hookimpl
        def vpr_bench_methods():
            yield MethodSpec(
                name="my-tiny-triplet",
                model="tiny-gem", loss="triplet", trainer="triplet-mining",
                train_dataset="synthcity-train",
                profiles={"quick": {"epochs": 1}},
                paper=(PaperResult("pitts30k-test", {"R@1": 50.0}, source="My paper, Table 1"),),
                summary="Tiny CNN + GeM trained with the triplet loss",
                weights_loader="my_plugin.weights:load_authors_file",  # optional
            )
    """


@hookspec
def vpr_bench_run_event(event: RunEvent) -> None:
    r"""Observe a run: called for every event (run started, epoch ended, checkpoint saved, ...).

    Observers must be cheap and must not raise; an exception is logged and ignored.

    Example::

        import json
        from vpr_bench import hookimpl

        @hookimpl
        def vpr_bench_run_event(event):
            if event.kind == "epoch-ended":
                with open("/tmp/epochs.jsonl", "a") as fh:
                    fh.write(json.dumps({"run": event.run_id, **event.payload}) + "\n")
    """


@hookspec(firstresult=True)
def vpr_bench_fetch(uri: str, dest: Path) -> Path | None:
    """Download ``uri`` to ``dest``; return the path, or None when the scheme is not yours.

    The first plugin that returns a path wins; the harness verifies sha256 afterwards.

    Example::

        import shutil
        from pathlib import Path
        from vpr_bench import hookimpl

        @hookimpl
        def vpr_bench_fetch(uri, dest):
            if not uri.startswith("lab://"):
                return None
            source = Path("/mnt/lab-share") / uri.removeprefix("lab://")
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, dest)
            return dest
    """
