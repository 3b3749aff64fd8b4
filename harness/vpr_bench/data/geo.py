"""Ground truth from positions: radius search with a KD-tree, never a dense Q x N matrix.

Conventions (docs/datasets.md section 0 and docs/protocols.md):

* A database image is a positive of a query when their UTM positions are within the radius,
  Euclidean in metres on (easting, northing), **inclusive** (``<=``), as sklearn's
  ``radius_neighbors`` that every anchor uses.
* Every returned index array is sorted ascending and int64 (sklearn returns them unsorted; the
  order carries no meaning, so we fix one).
* Training uses 10 m positives and treats everything within 25 m as "not a negative".
* TokyoTM's non-trivial positives exclude the query itself (squared distance <= 1 m^2) and
  database images captured at the query's own timestamp (Relja's ``nontrivialPosQ``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from vpr_bench.errors import DataError

if TYPE_CHECKING:
    from vpr_bench.data.split import GeoSplit, ImageRecord

__all__ = [
    "TRAIN_NEGATIVE_RADIUS_M",
    "TRAIN_POSITIVE_RADIUS_M",
    "positives_within",
    "self_indices",
    "split_positives",
    "tokyotm_nontrivial_positives",
    "training_radii",
    "utm_array",
]

TRAIN_POSITIVE_RADIUS_M = 10.0
"""Training positive radius (``nonTrivPosDistSqThr = 100`` m^2 in the NetVLAD .mat files)."""

TRAIN_NEGATIVE_RADIUS_M = 25.0
"""Images closer than this are never used as training negatives (``posDistThr = 25``)."""

# Float slack so that a point exactly on the radius (e.g. 3-4-5 triangles) stays inclusive.
_EPS = 1e-9


def _as_utm(name: str, utm: np.ndarray) -> np.ndarray:
    array = np.asarray(utm, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != 2:
        raise ValueError(
            f"{name} must be an [N, 2] array of (easting, northing), got shape {array.shape}."
        )
    if array.size and not np.isfinite(array).all():
        raise DataError(
            f"{name} holds NaN or infinite positions; this dataset has no usable UTM labels, "
            "so its ground truth cannot be computed from a radius."
        )
    return array


def positives_within(
    db_utm: np.ndarray, q_utm: np.ndarray, radius_m: float
) -> tuple[np.ndarray, ...]:
    """Database indices within ``radius_m`` of each query (inclusive), via a KD-tree.

    Args:
        db_utm: ``[N, 2]`` database (easting, northing) in metres.
        q_utm: ``[Q, 2]`` query (easting, northing) in metres.
        radius_m: The radius in metres (``<=`` counts).

    Returns:
        One ascending int64 array of database indices per query (empty when none).
    """
    from scipy.spatial import cKDTree

    db = _as_utm("db_utm", db_utm)
    queries = _as_utm("q_utm", q_utm)
    if radius_m < 0 or not math.isfinite(radius_m):
        raise ValueError(f"radius_m must be a finite non-negative number, got {radius_m}.")
    if len(db) == 0 or len(queries) == 0:
        return tuple(np.empty(0, dtype=np.int64) for _ in range(len(queries)))
    tree = cKDTree(db)
    hits = tree.query_ball_point(queries, r=radius_m + _EPS * max(1.0, radius_m))
    return tuple(np.sort(np.asarray(h, dtype=np.int64)) for h in hits)


def training_radii(
    db_utm: np.ndarray,
    q_utm: np.ndarray,
    positive_m: float = TRAIN_POSITIVE_RADIUS_M,
    non_negative_m: float = TRAIN_NEGATIVE_RADIUS_M,
) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """Training positives (within 10 m) and non-negatives (within 25 m) of each query.

    Negatives for mining are the database images *not* in the second list.

    Returns:
        ``(positives, non_negatives)``, each one ascending int64 array per query.
    """
    if positive_m > non_negative_m:
        raise ValueError(
            f"positive radius {positive_m} m must not exceed the non-negative radius "
            f"{non_negative_m} m."
        )
    return positives_within(db_utm, q_utm, positive_m), positives_within(
        db_utm, q_utm, non_negative_m
    )


def tokyotm_nontrivial_positives(
    db_utm: np.ndarray,
    q_utm: np.ndarray,
    db_timestamps: Sequence[str | int | None],
    q_timestamps: Sequence[str | int | None],
    radius_sq_m2: float = TRAIN_POSITIVE_RADIUS_M**2,
) -> tuple[np.ndarray, ...]:
    """TokyoTM non-trivial positives: ``1 < d^2 <= radius_sq_m2`` and another capture time.

    Every TokyoTM query is also a database image, so the query itself (``d^2 <= 1``) and the
    images of its own capture (same timestamp) are removed.

    Args:
        db_utm: ``[N, 2]`` database positions.
        q_utm: ``[Q, 2]`` query positions.
        db_timestamps: Capture time per database image (``YYYYMM``).
        q_timestamps: Capture time per query.
        radius_sq_m2: Squared radius in m^2 (``nonTrivPosDistSqThr``, 100).

    Returns:
        One ascending int64 array of database indices per query.
    """
    db = _as_utm("db_utm", db_utm)
    queries = _as_utm("q_utm", q_utm)
    if len(db_timestamps) != len(db) or len(q_timestamps) != len(queries):
        raise ValueError(
            f"timestamps ({len(db_timestamps)} db, {len(q_timestamps)} queries) do not match "
            f"the positions ({len(db)} db, {len(queries)} queries)."
        )
    db_ts = np.asarray([str(t) for t in db_timestamps])
    candidates = positives_within(db, queries, math.sqrt(radius_sq_m2))
    result = []
    for i, idx in enumerate(candidates):
        d_sq = ((db[idx] - queries[i]) ** 2).sum(axis=1)
        keep = (d_sq > 1.0) & (db_ts[idx] != str(q_timestamps[i]))
        result.append(idx[keep])
    return tuple(result)


def utm_array(records: Sequence[ImageRecord]) -> np.ndarray:
    """The ``[N, 2]`` float64 (easting, northing) array of ``records``."""
    out = np.empty((len(records), 2), dtype=np.float64)
    for i, record in enumerate(records):
        out[i, 0] = record.easting
        out[i, 1] = record.northing
    return out


def _groups(split: GeoSplit) -> tuple[list[str], list[str]] | None:
    db_groups = split.extras.get("db_groups")
    q_groups = split.extras.get("query_groups")
    if db_groups is None or q_groups is None:
        return None
    db_list = [str(g) for g in db_groups]  # type: ignore[attr-defined]
    q_list = [str(g) for g in q_groups]  # type: ignore[attr-defined]
    if len(db_list) != len(split.database) or len(q_list) != len(split.queries):
        raise DataError(
            f"Split {split.name}: extras db_groups/query_groups do not match the image counts."
        )
    return db_list, q_list


def self_indices(split: GeoSplit) -> np.ndarray:
    """The database index of each query's own image (same path), -1 where there is none.

    Protocols with ``exclude_self`` (queries that are database images too) remove it from
    the query's ranking (:func:`vpr_bench.eval.metrics.drop_self`).
    """
    where = {str(r.path): i for i, r in enumerate(split.database)}
    return np.asarray([where.get(str(q.path), -1) for q in split.queries], dtype=np.int64)


def split_positives(split: GeoSplit) -> tuple[np.ndarray, ...]:
    """The final positives of every query of ``split`` under its protocol.

    * ``ground_truth == "none"``: no positives (the protocol has no local ground truth).
    * ``ground_truth == "lists"``: the explicit ``split.positives`` (``-1`` = "no true match"
      entries dropped), sorted ascending.
    * ``ground_truth == "radius"``: database images within ``protocol.radius_m``. When the
      split defines ``extras["db_groups"]`` / ``extras["query_groups"]`` (MSLS cities, whose
      UTM zones differ), only database images of the query's own group count. With
      ``protocol.drop_same_timestamp`` (TokyoTM), database images captured at the query's
      timestamp are removed (they are dropped from the ranking too).

    Raises:
        DataError: The split has no protocol, or the protocol needs data the split lacks.
    """
    protocol = split.protocol
    if protocol is None:
        raise DataError(
            f"Split {split.name} has no evaluation protocol (a training-only split); "
            "evaluate one of the dataset's evaluable splits instead."
        )
    n_db = len(split.database)
    if protocol.ground_truth == "none":
        return tuple(np.zeros(0, dtype=np.int64) for _ in split.queries)
    if protocol.ground_truth == "lists":
        if split.positives is None:
            raise DataError(
                f"Protocol {protocol.name} takes ground truth from lists, but split "
                f"{split.name} ships none (its reader set no positives)."
            )
        out = []
        for q, entries in enumerate(split.positives):
            arr = np.asarray([int(e) for e in entries if int(e) != -1], dtype=np.int64)
            bad = arr[(arr < 0) | (arr >= n_db)]
            if bad.size:
                raise DataError(
                    f"Split {split.name}: ground truth of query {q} names database index "
                    f"{int(bad[0])}, outside 0..{n_db - 1}."
                )
            out.append(np.unique(arr))
        return tuple(out)
    if protocol.ground_truth != "radius":
        raise DataError(
            f"Protocol {protocol.name} uses {protocol.ground_truth!r} ground truth, which "
            f"split_positives does not compute; its dataset reader must provide the lists."
        )
    found = _radius_positives(split, protocol.radius_m)
    if not protocol.drop_same_timestamp:
        return found
    db_ts = np.asarray([str(r.timestamp) for r in split.database])
    out = []
    for query, idx in zip(split.queries, found, strict=True):
        if query.timestamp is None:
            raise DataError(
                f"Protocol {protocol.name} drops same-timestamp database items, but query "
                f"{query.path} of split {split.name} has no timestamp."
            )
        out.append(idx[db_ts[idx] != query.timestamp])
    return tuple(out)


def _radius_positives(split: GeoSplit, radius_m: float) -> tuple[np.ndarray, ...]:
    db_utm = utm_array(split.database)
    q_utm = utm_array(split.queries)
    groups = _groups(split)
    if groups is None:
        return positives_within(db_utm, q_utm, radius_m)
    db_groups, q_groups = groups
    result: list[np.ndarray] = [np.empty(0, dtype=np.int64)] * len(q_groups)
    db_arr = np.asarray(db_groups)
    q_arr = np.asarray(q_groups)
    for group in sorted(set(q_groups)):
        db_idx = np.flatnonzero(db_arr == group).astype(np.int64)
        q_idx = np.flatnonzero(q_arr == group)
        found = positives_within(db_utm[db_idx], q_utm[q_idx], radius_m)
        for qi, local in zip(q_idx, found, strict=True):
            result[int(qi)] = db_idx[local]
    return tuple(result)
