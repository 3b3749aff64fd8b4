"""The ``place-batches`` trainer: P places x K views per batch, in-batch mining.

Places come from ``place_id`` when every training record carries one and some id is shared by
several images; otherwise each database
image is a place whose views are itself and the queries within ``pos_radius_m`` that have it as
their nearest database image. Places with fewer than K views are skipped. Each epoch shuffles
the places (seeded by ``seed + epoch``) and draws K views per place; the loss (batch kind
``places``, e.g. ``multi-similarity``) receives ``embeddings [P*K, D]`` and ``labels [P*K]``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import torch

from vpr_bench.data.geo import utm_array
from vpr_bench.data.split import GeoSplit
from vpr_bench.errors import DataError
from vpr_bench.ranges import bounded
from vpr_bench.train.context import TrainContext, TrainOutcome
from vpr_bench.train.images import ImageTensors
from vpr_bench.train.loop import Engine
from vpr_bench.train.options import LoopConfig

__all__ = ["PlaceBatchesConfig", "PlaceParadigm", "fit", "group_places"]


@dataclass
class PlaceBatchesConfig(LoopConfig):
    """Options of ``place-batches`` (``trainer.*``); see also LoopConfig.

    Attributes:
        places_per_batch: P.
        views_per_place: K.
        pos_radius_m: Queries within this radius of a database image are views of its place.
    """

    places_per_batch: int = bounded(8, ge=1)
    views_per_place: int = bounded(2, ge=1)
    pos_radius_m: float = bounded(10.0, gt=0)


def group_places(split: GeoSplit, radius_m: float) -> list[list[int]]:
    """Image groups (indices into ``queries + database``) that show one place."""
    records = [*split.queries, *split.database]
    if all(r.place_id is not None for r in records):
        groups: dict[str, list[int]] = defaultdict(list)
        for i, record in enumerate(records):
            groups[str(record.place_id)].append(i)
        if any(len(g) > 1 for g in groups.values()):  # ids that group views, not per-image ids
            return [groups[k] for k in sorted(groups)]
    from scipy.spatial import cKDTree

    n_q = len(split.queries)
    places = [[n_q + i] for i in range(len(split.database))]
    if n_q and split.database:
        dist, nearest = cKDTree(utm_array(split.database)).query(utm_array(split.queries))
        for q, (d, db) in enumerate(zip(np.atleast_1d(dist), np.atleast_1d(nearest), strict=True)):
            if d <= radius_m:
                places[int(db)].append(q)
    return places


class PlaceParadigm:
    """Plans whose rows are the K image indices of one place."""

    def __init__(self, ctx: TrainContext, engine: Engine) -> None:
        cfg: PlaceBatchesConfig = ctx.config
        self.cfg, self.seed = cfg, ctx.seed
        split = ctx.train_split
        groups = group_places(split, cfg.pos_radius_m)
        self.places = [g for g in groups if len(g) >= cfg.views_per_place]
        if len(self.places) < 2:
            raise DataError(
                f"Split {split.name} has {len(self.places)} places with >= "
                f"{cfg.views_per_place} views; place batches need at least 2. Lower "
                "trainer.views_per_place or raise trainer.pos_radius_m."
            )
        paths = [r.path for r in (*split.queries, *split.database)]
        self.images = ImageTensors(
            paths, ctx.preprocess, engine.size, cache=cfg.cache_images, workers=cfg.num_workers
        )

    def rounds(self, epoch: int) -> int:
        """One plan per epoch."""
        return 1

    def make_plan(self, engine: Engine, epoch: int, round_idx: int) -> torch.Tensor:
        """Shuffled places, K views each (seeded by ``seed + epoch``)."""
        generator = torch.Generator().manual_seed(self.seed + epoch)
        order = torch.randperm(len(self.places), generator=generator).tolist()
        rows = []
        for p in order:
            views = torch.tensor(self.places[p])
            pick = torch.randperm(len(views), generator=generator)[: self.cfg.views_per_place]
            rows.append(views[pick])
        return torch.stack(rows)

    def loss(self, engine: Engine, rows: torch.Tensor) -> torch.Tensor:
        """The loss over ``rows`` places."""
        desc = engine.forward(engine.train_batch(self.images, rows.reshape(-1).tolist()))
        labels = torch.arange(rows.shape[0], device=desc.device).repeat_interleave(rows.shape[1])
        loss: torch.Tensor = engine.loss_fn(desc, labels)
        return loss

    def state_dict(self) -> dict[str, torch.Tensor]:
        """No state beyond the loop's."""
        return {}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Nothing to restore."""


def fit(ctx: TrainContext) -> TrainOutcome:
    """Train with P x K place batches; the ``fit`` of the ``place-batches`` trainer."""
    engine = Engine(ctx, batch_rows=ctx.config.places_per_batch)
    return engine.run(PlaceParadigm(ctx, engine))
