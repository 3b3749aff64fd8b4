"""Hard-negative tuple mining, vectorised on the device (methods.md Part A, sections 1.6-1.7).

A tuple is ``[query, positive, n_1 .. n_k]``:

* the positive is the database image within the positive radius (10 m) that is *nearest in
  descriptor space*;
* the negatives are the ``k`` (``neg_num``, 10) hardest among a uniformly random pool of
  ``neg_pool`` (1000) database images beyond the negative radius (25 m), united with the
  previous round's negatives of that query (OpenIBL's per-query negative cache).

OpenIBL draws ``neg_pool`` random *rank positions* of the argsorted negative list and keeps the
smallest ranks; drawing a uniformly random subset of the negative images and keeping the
smallest distances selects the same distribution without sorting any full row. All distance
and top-k work is batched matrix operations on the descriptors' device, chunked over queries
so that memory stays bounded (``max_elements`` floats per temporary matrix).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from vpr_bench.errors import DataError

__all__ = [
    "TrainingGroundTruth",
    "TupleMiner",
    "mine_tuples",
    "pad_index_lists",
    "squared_distances",
    "training_ground_truth",
]

log = logging.getLogger(__name__)

DEFAULT_MAX_ELEMENTS = 1 << 24
"""Upper bound on the elements of one ``[queries, database]`` temporary (64 MiB of float32)."""


@dataclass(frozen=True)
class TrainingGroundTruth:
    """Training positives and non-negatives of the usable queries of a split.

    Attributes:
        query_ids: Indices into ``split.queries`` of the queries kept (those with a positive;
            OpenIBL drops the others).
        positives: Per kept query, database indices within the positive radius.
        non_negatives: Per kept query, database indices within the negative radius.
        n_database: Number of database images.
    """

    query_ids: np.ndarray
    positives: tuple[np.ndarray, ...]
    non_negatives: tuple[np.ndarray, ...]
    n_database: int


def training_ground_truth(
    db_utm: np.ndarray, q_utm: np.ndarray, pos_radius_m: float, neg_radius_m: float
) -> TrainingGroundTruth:
    """Compute training positives/non-negatives and drop queries without a positive.

    Args:
        db_utm: ``[N, 2]`` database positions in metres.
        q_utm: ``[Q, 2]`` query positions in metres.
        pos_radius_m: Positive radius (10 m in OpenIBL).
        neg_radius_m: Radius inside which nothing is a negative (25 m).

    Raises:
        DataError: No query has a positive, so nothing can be trained.
    """
    from vpr_bench.data.geo import training_radii

    positives, non_negatives = training_radii(db_utm, q_utm, pos_radius_m, neg_radius_m)
    keep = np.asarray([i for i, p in enumerate(positives) if len(p) > 0], dtype=np.int64)
    dropped = len(positives) - len(keep)
    if dropped:
        log.info("Dropped %d of %d training queries without a positive.", dropped, len(positives))
    if len(keep) == 0:
        raise DataError(
            f"No training query has a database image within {pos_radius_m} m, so no tuple can "
            "be built. Check the split's UTM positions or raise trainer.pos_radius_m."
        )
    return TrainingGroundTruth(
        query_ids=keep,
        positives=tuple(positives[i] for i in keep),
        non_negatives=tuple(non_negatives[i] for i in keep),
        n_database=len(db_utm),
    )


def pad_index_lists(
    lists: Sequence[np.ndarray], fill: int, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """Stack ragged index lists into a ``[len(lists), max_len]`` int64 tensor, ``fill``-padded."""
    width = max([1, *(len(x) for x in lists)])
    out = np.full((len(lists), width), fill, dtype=np.int64)
    for row, values in enumerate(lists):
        out[row, : len(values)] = values
    return torch.from_numpy(out).to(device)


def squared_distances(queries: torch.Tensor, database: torch.Tensor) -> torch.Tensor:
    """``||q||^2 + ||d||^2 - 2 q.d`` for every pair, as a ``[Q, N]`` float32 matrix."""
    q = queries.float()
    d = database.float()
    dist = (q * q).sum(1, keepdim=True) + (d * d).sum(1)[None, :] - 2.0 * (q @ d.T)
    return dist.clamp_(min=0.0)


def mine_tuples(
    q_desc: torch.Tensor,
    db_desc: torch.Tensor,
    positives: torch.Tensor,
    non_negatives: torch.Tensor,
    neg_cache: torch.Tensor,
    *,
    neg_num: int,
    neg_pool: int,
    generator: torch.Generator,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mine the positive and hard negatives of a chunk of queries.

    Args:
        q_desc: ``[Q, D]`` descriptors of the chunk's queries.
        db_desc: ``[N, D]`` descriptors of the whole training database.
        positives: ``[Q, P]`` database indices within the positive radius, padded with ``-1``
            (every row has at least one).
        non_negatives: ``[Q, M]`` database indices within the negative radius, padded with -1.
        neg_cache: ``[Q, neg_num]`` previous negatives of each query, ``-1`` where none.
        neg_num: Negatives per tuple.
        neg_pool: Size of the random pool of negatives.
        generator: Random source of the pool, on the descriptors' device.
        max_elements: Bound on the elements of one ``[rows, N]`` temporary.

    Returns:
        ``(pos [Q], negs [Q, neg_num])`` database indices (int64, on the descriptors' device).

    Raises:
        DataError: A query has fewer than ``neg_num`` database images beyond the negative radius.
    """
    n_db = db_desc.shape[0]
    device = db_desc.device
    rows = max(1, max_elements // max(1, n_db))
    pos_out = torch.empty(q_desc.shape[0], dtype=torch.long, device=device)
    neg_out = torch.empty(q_desc.shape[0], neg_num, dtype=torch.long, device=device)
    db_sq = (db_desc.float() ** 2).sum(1)
    for start in range(0, q_desc.shape[0], rows):
        sl = slice(start, start + rows)
        q = q_desc[sl].float()
        dist = (q * q).sum(1, keepdim=True) + db_sq[None, :] - 2.0 * (q @ db_desc.float().T)
        dist.clamp_(min=0.0)
        pos_out[sl] = _nearest_positive(dist, positives[sl].to(device))
        neg_out[sl] = _hardest_negatives(
            dist,
            non_negatives[sl].to(device),
            neg_cache[sl].to(device),
            neg_num=neg_num,
            neg_pool=neg_pool,
            generator=generator,
        )
    return pos_out, neg_out


def _nearest_positive(dist: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
    valid = positives >= 0
    pos_dist = dist.gather(1, positives.clamp(min=0)).masked_fill(~valid, float("inf"))
    best = pos_dist.argmin(dim=1, keepdim=True)
    return positives.gather(1, best).squeeze(1)


def _hardest_negatives(
    dist: torch.Tensor,
    non_negatives: torch.Tensor,
    cache: torch.Tensor,
    *,
    neg_num: int,
    neg_pool: int,
    generator: torch.Generator,
) -> torch.Tensor:
    rows, n_db = dist.shape
    # Candidate mask: everything except the non-negatives (padding points at a spare column).
    excluded = torch.zeros(rows, n_db + 1, dtype=torch.bool, device=dist.device)
    excluded.scatter_(1, torch.where(non_negatives >= 0, non_negatives, n_db), True)
    excluded = excluded[:, :n_db]
    # A uniformly random subset of the candidates: the smallest random keys (non-candidates 2.0).
    keys = torch.rand(rows, n_db, generator=generator, device=dist.device)
    keys.masked_fill_(excluded, 2.0)
    pool_size = min(neg_pool, n_db)
    pool_keys, pool = keys.topk(pool_size, dim=1, largest=False)
    pool_dist = dist.gather(1, pool).masked_fill(pool_keys > 1.0, float("inf"))
    # The previous negatives of each query, unless already drawn into the pool.
    cached = cache >= 0
    duplicate = (cache[:, :, None] == pool[:, None, :]).any(dim=2)
    cache_dist = dist.gather(1, cache.clamp(min=0)).masked_fill(~cached | duplicate, float("inf"))
    all_idx = torch.cat([pool, cache.clamp(min=0)], dim=1)
    all_dist = torch.cat([pool_dist, cache_dist], dim=1)
    sorted_dist, order = torch.sort(all_dist, dim=1, stable=True)
    if neg_num > order.shape[1] or not torch.isfinite(sorted_dist[:, neg_num - 1]).all():
        raise DataError(
            f"A training query has fewer than neg_num={neg_num} database images beyond the "
            "negative radius. Lower trainer.neg_num or use a larger training database."
        )
    return all_idx.gather(1, order[:, :neg_num])


class TupleMiner:
    """Builds tuples for chunks of queries and keeps the per-query negative cache.

    Args:
        ground_truth: Training positives/non-negatives of the kept queries.
        neg_num: Negatives per tuple.
        neg_pool: Size of the random negative pool.
        device: Where mining runs (the model's device).
        max_elements: Bound on the elements of one temporary matrix.
    """

    def __init__(
        self,
        ground_truth: TrainingGroundTruth,
        *,
        neg_num: int,
        neg_pool: int,
        device: torch.device | str = "cpu",
        max_elements: int = DEFAULT_MAX_ELEMENTS,
    ) -> None:
        if neg_num < 1 or neg_pool < 1:
            raise ValueError(f"neg_num and neg_pool must be >= 1, got {neg_num}, {neg_pool}.")
        self.gt = ground_truth
        self.neg_num = neg_num
        self.neg_pool = neg_pool
        self.device = torch.device(device)
        self.max_elements = max_elements
        self.positives = pad_index_lists(ground_truth.positives, -1)
        self.non_negatives = pad_index_lists(ground_truth.non_negatives, -1)
        self.neg_cache = torch.full((len(ground_truth.query_ids), neg_num), -1, dtype=torch.long)

    @property
    def n_queries(self) -> int:
        """Number of usable training queries."""
        return len(self.gt.query_ids)

    def mine(
        self, chunk: torch.Tensor, q_desc: torch.Tensor, db_desc: torch.Tensor, seed: int
    ) -> torch.Tensor:
        """Mine the tuples of ``chunk`` (indices of kept queries) and update the cache.

        Args:
            chunk: ``[S]`` indices into the kept queries.
            q_desc: ``[S, D]`` descriptors of those queries.
            db_desc: ``[N, D]`` descriptors of the database.
            seed: Seed of the random pool (derive it from run seed, epoch and chunk).

        Returns:
            ``[S, 2 + neg_num]`` int64 CPU tensor ``[kept query, db positive, db negatives...]``.
        """
        generator = torch.Generator(device=self.device)
        generator.manual_seed(seed)
        pos, negs = mine_tuples(
            q_desc.to(self.device),
            db_desc.to(self.device),
            self.positives[chunk],
            self.non_negatives[chunk],
            self.neg_cache[chunk],
            neg_num=self.neg_num,
            neg_pool=self.neg_pool,
            generator=generator,
            max_elements=self.max_elements,
        )
        negs = negs.cpu()
        self.neg_cache[chunk] = negs
        return torch.cat([chunk[:, None].cpu(), pos.cpu()[:, None], negs], dim=1)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The negative cache, for checkpoints."""
        return {"neg_cache": self.neg_cache.clone()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore the negative cache saved by :meth:`state_dict`."""
        cache = state["neg_cache"]
        if tuple(cache.shape) != tuple(self.neg_cache.shape):
            raise DataError(
                f"The checkpoint's negative cache has shape {tuple(cache.shape)} but this run "
                f"needs {tuple(self.neg_cache.shape)}: it was saved for another split or neg_num."
            )
        self.neg_cache = cache.clone().long()
