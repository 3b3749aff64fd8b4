"""k-nearest-neighbour search restricted to groups (MSLS's per-city retrieval).

The official MSLS validation protocol (protocols.md, ``msls-val``) searches every query only
among the database images of its own city; ``msls-val-merged`` searches one merged database.
A split asks for the grouped search with ``extras["retrieval_within_groups"] = True`` and names
the groups in ``extras["db_groups"]`` (one per database image) and ``extras["query_groups"]``
(one per query); the ground truth is grouped the same way (:func:`vpr_bench.data.geo.
split_positives`).

:func:`grouped_knn` runs :func:`vpr_bench.eval.search.knn` once per group and maps the
indices back to the global database. Its result has the shape the whole-database search would
have, ``[Q, min(k, N)]`` (what :mod:`vpr_bench.eval.metrics` expects of a kNN result). Rows a
group cannot fill (fewer database items than columns, or none at all) are padded the way
``knn`` pads rows it cannot fill: index ``-1`` and distance ``+inf``; the metrics skip those.
Within a group the neighbours keep ``knn``'s order (nearest first, ties in database order, and
the global indices of a group ascend with its local ones, so ties stay in global database
order too).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from vpr_bench.errors import DataError, UsageError

if TYPE_CHECKING:
    import torch

    from vpr_bench.data.split import GeoSplit

__all__ = ["grouped_knn", "retrieval_groups"]

log = logging.getLogger(__name__)


def retrieval_groups(split: GeoSplit) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """The ``(query_groups, db_groups)`` of a split that retrieves within groups, else None.

    Args:
        split: A loaded split; grouped retrieval is on when
            ``split.extras.get("retrieval_within_groups")`` is true.

    Returns:
        None for a whole-database search; otherwise one group name (as ``str``) per query
        and one per database image.

    Raises:
        DataError: Grouped retrieval is asked for but the group lists are missing or do not
            match the image counts (a dataset-reader bug).
    """
    if not split.extras.get("retrieval_within_groups"):
        return None
    lists: list[tuple[str, ...]] = []
    for key, images in (("query_groups", split.queries), ("db_groups", split.database)):
        value = split.extras.get(key)
        if not isinstance(value, Sequence) or isinstance(value, str):
            raise DataError(
                f"Split {split.name} retrieves within groups but extras[{key!r}] is "
                f"{type(value).__name__}, not a list of group names; its dataset reader must "
                "give one group per image."
            )
        if len(value) != len(images):
            raise DataError(
                f"Split {split.name}: extras[{key!r}] has {len(value)} group names for "
                f"{len(images)} images; its dataset reader must give one group per image."
            )
        lists.append(tuple(str(g) for g in value))
    return lists[0], lists[1]


def _rows(x: np.ndarray | torch.Tensor, rows: np.ndarray) -> np.ndarray | torch.Tensor:
    """Rows ``rows`` (ascending) of ``x``: a view when they are contiguous, else a copy."""
    if len(rows) and int(rows[-1]) - int(rows[0]) + 1 == len(rows):
        return x[int(rows[0]) : int(rows[-1]) + 1]
    if isinstance(x, np.ndarray):
        return np.asarray(x[rows])
    import torch

    return x[torch.from_numpy(rows).to(x.device)]


def _group_codes(groups: Sequence[object], n: int, what: str) -> np.ndarray:
    if isinstance(groups, str) or len(groups) != n:
        size = "a string" if isinstance(groups, str) else f"{len(groups)} names"
        raise UsageError(f"grouped_knn: {what} must hold one group name per row ({n}), got {size}.")
    return np.asarray([str(g) for g in groups], dtype=object)


def grouped_knn(
    queries: np.ndarray | torch.Tensor,
    database: np.ndarray | torch.Tensor,
    k: int,
    *,
    query_groups: Sequence[object],
    db_groups: Sequence[object],
    **knn_kwargs: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest database items of every query among its own group's items.

    Args:
        queries: ``[Q, D]`` descriptors (numpy, including memmaps, or torch).
        database: ``[N, D]`` descriptors.
        k: Neighbours per query; clamped to ``N`` like :func:`~vpr_bench.eval.search.knn`.
        query_groups: One group name per query (compared as ``str``).
        db_groups: One group name per database item.
        **knn_kwargs: Passed to :func:`~vpr_bench.eval.search.knn` (``backend``, ``device``,
            ``chunk_bytes``, ``index_factory``).

    Returns:
        ``(idx, dist)``: ``[Q, min(k, N)]`` int64 global database indices (nearest first,
        ties in database order) and float32 L2 distances; rows a group cannot fill end in
        index -1 / distance +inf, and a query whose group has no database item gets a row of
        padding only.

    Raises:
        UsageError: Bad shapes, a bad ``k``, or group lists that do not match the rows (and
            whatever ``knn`` raises for its arguments).
    """
    from vpr_bench.eval.search import _check_inputs, knn

    n_q, n_db, _ = _check_inputs(queries, database, k)
    q_codes = _group_codes(query_groups, n_q, "query_groups")
    db_codes = _group_codes(db_groups, n_db, "db_groups")
    width = min(k, n_db)
    out_i = np.full((n_q, width), -1, dtype=np.int64)
    out_d = np.full((n_q, width), np.inf, dtype=np.float32)
    for group in sorted(set(q_codes.tolist())):
        q_rows = np.flatnonzero(q_codes == group)
        db_rows = np.flatnonzero(db_codes == group).astype(np.int64)
        log.info(
            "grouped knn: group %s, %d queries, %d database items", group, len(q_rows), len(db_rows)
        )
        if len(db_rows) == 0:
            log.warning("grouped knn: group %s has no database items; its queries get none", group)
            continue
        local_i, local_d = knn(
            _rows(queries, q_rows),
            _rows(database, db_rows),
            min(width, len(db_rows)),
            **knn_kwargs,
        )
        cols = local_i.shape[1]
        out_i[q_rows, :cols] = np.where(local_i >= 0, db_rows[np.maximum(local_i, 0)], -1)
        out_d[q_rows, :cols] = local_d
    return out_i, out_d
