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

            def __init__(self) -> None:
                super().__init__()
                self.gain = torch.nn.Parameter(torch.ones(3))  # one weight per channel

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return torch.nn.functional.normalize(x.mean(dim=(2, 3)) * self.gain, dim=1)

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

    A loss's ``forward`` receives the batch of its kind (:class:`~vpr_bench.BatchKind`) as
    L2-normalised descriptors and returns a scalar:

    * ``tuples``: ``anchors [B, D], positives [B, P, D], negatives [B, N, D]``, one tuple per
      row; a tuple's loss may use only its own rows (compare ``anchors[:, None]`` with
      ``positives``: ``anchors - positives`` broadcasts to ``[B, B, D]``);
    * ``places``: ``descriptors [P*K, D], labels [P*K]`` (int64 place labels, K views each);
    * ``domain-pairs``: ``domain_a [B, D], domain_b [B, D]`` (row i of both is one place);
    * ``region-tuples`` (SFRS-style, trained by ``region-generations`` on a model that declares
      ``ModelSpec.regions``): ``anchors [B, R, L], pairs [B, 1+N, R, L], sim_diff [B, P, R, R],
      sim_diff_teacher [B, P, R, R], diff_mask [B, P], generation: int`` (see
      :class:`~vpr_bench.BatchKind`); a loss with per-generation settings may add
      ``check_generations(n)``, called before training starts;
    * ``domain-views`` (DaCo-style): ``views [B, V, D]``, row i one item (an image and its
      rendering in the other domain) under V augmentations, V the loss's int ``n_views``;
    * ``domain-images`` (DISAM-style, unaligned domain-labelled images): the latent codes
      ``enc_a, enc_b, rec_a, rec_b [B, C, H, W]`` of one draw per row (not normalised).

    :class:`vpr_bench.testing.LossConformance` checks a loss against its kind.

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
                # anchors [B, D], positives [B, P, D], negatives [B, N, D]
                d_pos = (anchors[:, None] - positives).norm(dim=-1)  # [B, P]
                d_neg = (anchors[:, None] - negatives).norm(dim=-1)  # [B, N]
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
    """Register training procedures: ``fit(ctx: TrainContext) -> TrainOutcome``.

    Build a trainer on the public :mod:`vpr_bench.train` API: describe what a round trains on
    (a :class:`~vpr_bench.train.Paradigm`) and let the :class:`~vpr_bench.train.Engine` run
    the loop (optimiser, schedule, AMP, validation, best checkpoint, resumption, DDP). A
    complete trainer that pulls each training query towards its nearest database image and
    pushes it from a random far one (tuples of one positive and one negative, the
    ``BatchKind.TUPLES`` layout ``(anchors [B, D], positives [B, 1, D], negatives [B, 1, D])``):

    Example::

        from dataclasses import dataclass

        import numpy as np
        import torch

        from vpr_bench import BatchKind, TrainerSpec, hookimpl
        from vpr_bench.train import (
            Engine, ImageTensors, LoopConfig, TrainContext, TrainOutcome, training_ground_truth,
        )


        @dataclass
        class NearFarConfig(LoopConfig):
            tuples_per_step: int = 8  # trainer.tuples_per_step
            far_m: float = 50.0  # negatives lie beyond this distance (trainer.far_m)


        class NearFar:
            def __init__(self, ctx: TrainContext, engine: Engine) -> None:
                split, self.seed = ctx.train_split, ctx.seed
                utm = lambda records: np.array([(r.easting, r.northing) for r in records])
                gt = training_ground_truth(
                    utm(split.database), utm(split.queries), 10.0, ctx.config.far_m
                )
                self.queries = gt.query_ids.tolist()  # queries with a positive
                self.positive = [int(pos[0]) for pos in gt.positives]
                self.near = [set(n.tolist()) for n in gt.non_negatives]
                self.n_q, self.n_db = len(split.queries), len(split.database)
                paths = [r.path for r in (*split.queries, *split.database)]
                self.images = ImageTensors(paths, ctx.preprocess, engine.size)

            def rounds(self, epoch: int) -> int:
                return 1

            def make_plan(self, engine: Engine, epoch: int, round_idx: int) -> torch.Tensor:
                g = torch.Generator().manual_seed(self.seed + epoch)
                rows = []
                for i in torch.randperm(len(self.queries), generator=g).tolist():
                    far = next(d for d in torch.randperm(self.n_db, generator=g).tolist()
                               if d not in self.near[i])
                    rows.append([self.queries[i], self.n_q + self.positive[i], self.n_q + far])
                return torch.tensor(rows)

            def loss(self, engine: Engine, rows: torch.Tensor) -> torch.Tensor:
                flat = rows.reshape(-1).tolist()
                desc = engine.forward(engine.train_batch(self.images, flat)).view(*rows.shape, -1)
                return engine.loss_fn(desc[:, 0], desc[:, 1:2], desc[:, 2:3])

            def state_dict(self) -> dict[str, torch.Tensor]:
                return {}

            def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
                pass


        def fit(ctx: TrainContext) -> TrainOutcome:
            engine = Engine(ctx, batch_rows=ctx.config.tuples_per_step)
            return engine.run(NearFar(ctx, engine))


        @hookimpl
        def vpr_bench_trainers():
            yield TrainerSpec(name="near-far", fit=fit, config_cls=NearFarConfig,
                              batch_kinds=(BatchKind.TUPLES,),
                              summary="One near positive and one random far negative per query")
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

    A profile maps config keys, written as for ``--set``, to values: ``seed``,
    ``train_dataset``, ``val_dataset``, ``pca_dim``, ``model.*``, ``loss.*``, ``trainer.*``
    (``vpr-bench list methods --options METHOD`` lists them with types, defaults and help).

    Example::

        from vpr_bench import MethodSpec, PaperResult, hookimpl

        @hookimpl
        def vpr_bench_methods():
            yield MethodSpec(
                name="my-tiny-triplet",
                model="tiny-gem", loss="triplet", trainer="triplet-mining",
                train_dataset="synthcity-train",
                profiles={"quick": {"trainer.epochs": 1, "seed": 1}},  # as --set keys
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
