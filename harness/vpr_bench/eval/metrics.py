"""Retrieval metrics computed from one shared kNN result (protocols.md "Common rules").

Every metric reads the protocol's *effective ranking* of each query, built from
``RetrievalResult.knn_idx`` (nearest first, ties in database order):

1. ``drop_same_timestamp``: database items with the query's own timestamp are removed (TokyoTM).
2. ``place_nms``: the ranking is cut to ``max(N) * nms_factor`` items, then only the first item
   of every database place id is kept (Tokyo 24/7, OpenIBL ``spatial_nms``).
3. The ranking is cut to the depth the metric needs.

Definitions (``P_q`` = the positives of query ``q``, ``hit_i`` = 1 when rank ``i`` is in ``P_q``):

* **R@N**: ``q`` is correct at ``N`` when ``hit_i`` for some ``i <= N``. Queries without
  positives are misses under ``no_positive="fail"`` and are left out under ``"exclude"``.
  R@N = correct / scored queries, in percent.
* **mAP@N** (official MSLS ``apk``): ``AP@N(q) = sum_{i<=N} hit_i * (hits in 1..i) / i``
  divided by ``min(|P_q|, N)``; the mean over scored queries (a query without positives
  scores 0 under ``fail``), in percent.
* **PR curve from top-1** (VPR-Bench / VPR tutorial): a query's score is ``-dist`` of its
  first retrieved item; it is correct when that item is a positive. At threshold ``t`` the
  accepted queries are those with score ``>= t``: TP = accepted and correct, FP = accepted
  and not correct (a query without positives is a FP when accepted and a true negative
  otherwise; it is always part of this metric). Precision = TP/(TP+FP), recall = TP / number
  of queries with a positive. One curve point per distinct score, highest first.
  **R@100P** = the largest recall with FP = 0 (0 when the best-scored query is wrong).
  **PR-AUC** = trapezoidal area under the points, starting from (recall 0, precision 1).
* **per-condition R@N**: R@N over the queries of each ``query_conditions`` label, reported as
  ``"R@N [label]"`` keys (queries with no label are in no group).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vpr_bench.errors import DataError, UsageError

if TYPE_CHECKING:
    import numpy as np

    from vpr_bench.protocol import EvalProtocol
    from vpr_bench.runtime import RetrievalResult
    from vpr_bench.specs import EvaluatorSpec

__all__ = [
    "MetricsOutcome",
    "Ranking",
    "compute_metrics",
    "drop_self",
    "effective_ranking",
    "map_at_n",
    "per_condition_recall",
    "pr_metrics",
    "recall_at_n",
    "required_k",
]

log = logging.getLogger(__name__)

_CONDITION_KEY = re.compile(r"^(?P<metric>.+) \[(?P<condition>.+)\]$")


@dataclass(frozen=True)
class MetricsOutcome:
    """The numbers of one evaluation.

    Attributes:
        metrics: Flat metrics in percent, e.g. ``{"R@1": 81.2, "mAP@5": 60.1}``.
        per_condition: ``{condition: {"R@1": ...}}`` where the dataset labels conditions.
        counts: ``n_queries``, ``n_scored``, ``n_without_positive``, ``n_database``, ``k``.
    """

    metrics: dict[str, float]
    per_condition: dict[str, dict[str, float]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Ranking:
    """The effective ranking of every query and where it hits a positive.

    Attributes:
        idx: ``[Q, L]`` database indices after dropping and NMS; -1 pads short rows.
        hits: ``[Q, L]`` True where ``idx`` is a positive of the query.
        n_positives: ``[Q]`` size of each query's positive set.
        top1_dist: ``[Q]`` distance of each query's first effective item (+inf if none).
    """

    idx: np.ndarray
    hits: np.ndarray
    n_positives: np.ndarray
    top1_dist: np.ndarray


def required_k(protocol: EvalProtocol, evaluators: Iterable[EvaluatorSpec] = ()) -> int:
    """How many neighbours per query the kNN must return for this protocol and evaluators.

    ``max(recall_ns + requires_knn)``, times ``nms_factor`` when the protocol applies place NMS
    or drops same-timestamp items (both remove items before the cut). Clamp it to the database
    size when searching (``knn`` does). One more when the protocol excludes each query's own
    image (:func:`drop_self` removes it after the search).
    """
    depth = max([max(protocol.recall_ns)] + [e.requires_knn for e in evaluators])
    depth += int(protocol.exclude_self)
    if protocol.place_nms or protocol.drop_same_timestamp:
        depth *= protocol.nms_factor
    return depth


def _codes(labels: Any, n: int, what: str) -> np.ndarray:
    """Integer codes of string labels; None gets a unique negative code (never equal)."""
    import numpy as np

    if len(labels) != n:
        raise DataError(f"RetrievalResult.{what} has {len(labels)} labels for {n} items.")
    known = sorted({str(v) for v in labels if v is not None})
    lookup = {v: i for i, v in enumerate(known)}
    return np.array(
        [lookup[str(v)] if v is not None else -1 - i for i, v in enumerate(labels)],
        dtype=np.int64,
    )


def _compact(idx: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Move the kept entries of each row to the front (order kept), pad with -1."""
    import numpy as np

    order = np.argsort(~keep, axis=1, kind="stable")
    out = np.take_along_axis(np.where(keep, idx, -1), order, axis=1)
    width = int(keep.sum(axis=1).max()) if idx.size else 0
    return out[:, :width]


def effective_ranking(result: RetrievalResult, protocol: EvalProtocol, depth: int) -> Ranking:
    """Apply timestamp dropping and place NMS, cut to ``depth`` and mark the hits.

    Raises:
        DataError: If indices or positives fall outside the database, or a label list needed
            by the protocol is missing.
    """
    import numpy as np

    n_db, idx = result.n_database, np.asarray(result.knn_idx, dtype=np.int64)
    dist = np.asarray(result.knn_dist, dtype=np.float32)
    if idx.size and (idx.min() < -1 or idx.max() >= n_db):
        raise DataError(f"knn_idx holds indices outside [-1, {n_db}); the kNN does not match.")
    if protocol.drop_same_timestamp:
        if result.query_timestamps is None or result.db_timestamps is None:
            raise DataError(
                f"Protocol {protocol.key} drops same-timestamp items but the result has no "
                "query_timestamps/db_timestamps; the dataset loader must provide them."
            )
        both = _codes(
            list(result.query_timestamps) + list(result.db_timestamps),
            result.n_queries + n_db,
            "timestamps",
        )
        q_ts, db_ts = both[: result.n_queries], both[result.n_queries :]
        keep = (idx >= 0) & (db_ts[np.maximum(idx, 0)] != q_ts[:, None])
        dist = _compact(dist, keep) if keep.size else dist
        idx = _compact(idx, keep) if keep.size else idx
    if protocol.place_nms:
        if result.db_place_ids is None:
            raise DataError(
                f"Protocol {protocol.key} applies place NMS but the result has no db_place_ids."
            )
        window = max(protocol.recall_ns) * protocol.nms_factor
        idx, dist = idx[:, :window], dist[:, :window]
        place = np.where(idx >= 0, _codes(result.db_place_ids, n_db, "db_place_ids")[idx], 0)
        order = np.argsort(place, axis=1, kind="stable")
        sorted_place = np.take_along_axis(place, order, axis=1)
        first = np.ones_like(sorted_place, dtype=bool)
        first[:, 1:] = sorted_place[:, 1:] != sorted_place[:, :-1]
        keep = np.zeros_like(first)
        np.put_along_axis(keep, order, first, axis=1)
        keep &= idx >= 0
        idx, dist = _compact(idx, keep), _compact(dist, keep)
    idx = idx[:, :depth]
    n_pos = np.array([len(p) for p in result.positives], dtype=np.int64)
    parts = [np.asarray(p, dtype=np.int64).reshape(-1) for p in result.positives]
    flat = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    if flat.size and (flat.min() < 0 or flat.max() >= n_db):
        raise DataError(f"Ground-truth positives hold indices outside [0, {n_db}).")
    owner = np.repeat(np.arange(result.n_queries, dtype=np.int64), n_pos)
    keys = np.where(idx >= 0, np.arange(len(idx))[:, None] * n_db + idx, -1)
    hits = np.isin(keys, owner * n_db + flat) & (idx >= 0)
    top1 = dist[:, 0] if dist.shape[1] and idx.shape[1] else np.full(len(idx), np.inf)
    top1 = np.where(idx[:, 0] >= 0, top1, np.inf) if idx.shape[1] else top1
    return Ranking(idx=idx, hits=hits, n_positives=n_pos, top1_dist=top1.astype(np.float32))


def drop_self(
    knn_idx: np.ndarray, knn_dist: np.ndarray, self_idx: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Remove each query's own database image from its kNN result (``exclude_self``).

    Args:
        knn_idx: ``[Q, K]`` database indices, nearest first (-1 pads).
        knn_dist: ``[Q, K]`` matching distances.
        self_idx: ``[Q]`` the database index of each query's own image, -1 where it has none.

    Returns:
        ``[Q, K]`` indices and distances, order kept, without the query's own image; a row
        that held it ends with one -1 (distance inf) pad. :func:`required_k` searched one
        neighbour more, so the depth the metrics need is still there.
    """
    import numpy as np

    idx = np.asarray(knn_idx, dtype=np.int64)
    dist = np.asarray(knn_dist, dtype=np.float32)
    own = np.asarray(self_idx, dtype=np.int64).reshape(-1, 1)
    keep = (idx != own) | (own < 0)
    order = np.argsort(~keep, axis=1, kind="stable")
    idx = np.take_along_axis(np.where(keep, idx, -1), order, axis=1)
    dist = np.take_along_axis(np.where(keep, dist, np.inf), order, axis=1)
    return idx, dist.astype(np.float32)


def _check_depth(result: RetrievalResult, need: int) -> None:
    have = result.knn_idx.shape[1]
    if have < min(need, result.n_database):
        raise UsageError(
            f"The kNN result has {have} neighbours per query but the metrics need {need}; "
            "search with k=required_k(protocol, evaluators)."
        )


def _scored(ranking: Ranking, protocol: EvalProtocol, rows: Any = None) -> Any:
    import numpy as np

    sel = np.ones(len(ranking.n_positives), dtype=bool) if rows is None else rows
    if protocol.no_positive == "exclude":
        sel = sel & (ranking.n_positives > 0)
    return sel


def _recall(ranking: Ranking, ns: tuple[int, ...], scored: Any) -> dict[str, float]:
    import numpy as np

    n_scored = int(scored.sum())
    if n_scored == 0:
        raise DataError("No query can be scored (all lack positives and the rule is 'exclude').")
    hits = ranking.hits[scored]
    first = np.where(hits.any(axis=1), hits.argmax(axis=1), np.iinfo(np.int64).max)
    return {f"R@{n}": 100.0 * float(np.count_nonzero(first < n)) / n_scored for n in ns}


def recall_at_n(result: RetrievalResult, protocol: EvalProtocol) -> dict[str, float]:
    """R@N for ``protocol.recall_ns`` (see the module docstring), in percent."""
    _check_depth(result, required_k(protocol))
    ranking = effective_ranking(result, protocol, max(protocol.recall_ns))
    return _recall(ranking, protocol.recall_ns, _scored(ranking, protocol))


def map_at_n(result: RetrievalResult, protocol: EvalProtocol) -> dict[str, float]:
    """mAP@N for ``protocol.recall_ns`` as the official MSLS evaluation, in percent."""
    import numpy as np

    _check_depth(result, required_k(protocol))
    ranking = effective_ranking(result, protocol, max(protocol.recall_ns))
    scored = _scored(ranking, protocol)
    if not scored.any():
        raise DataError("No query can be scored for mAP (all lack positives, rule 'exclude').")
    hits = ranking.hits[scored].astype(np.float64)
    n_pos = ranking.n_positives[scored]
    ranks = np.arange(1, hits.shape[1] + 1, dtype=np.float64)
    precision_at_hit = hits * np.cumsum(hits, axis=1) / ranks
    out = {}
    for n in protocol.recall_ns:
        denom = np.minimum(n_pos, n).astype(np.float64)
        ap = np.divide(
            precision_at_hit[:, :n].sum(axis=1), denom, out=np.zeros_like(denom), where=denom > 0
        )
        out[f"mAP@{n}"] = 100.0 * float(ap.mean())
    return out


def pr_metrics(result: RetrievalResult, protocol: EvalProtocol) -> dict[str, float]:
    """Recall at 100 % precision and PR-AUC from the top-1 scores, in percent."""
    import numpy as np

    _check_depth(result, 1)
    ranking = effective_ranking(result, protocol, 1)
    n_with_pos = int(np.count_nonzero(ranking.n_positives > 0))
    if n_with_pos == 0:
        raise DataError("PR metrics need at least one query with a positive.")
    valid = np.isfinite(ranking.top1_dist)
    score = -ranking.top1_dist[valid].astype(np.float64)
    correct = ranking.hits[valid, 0] if ranking.hits.shape[1] else np.zeros(0, dtype=bool)
    order = np.argsort(-score, kind="stable")
    score, correct = score[order], correct[order]
    tp, fp = np.cumsum(correct), np.cumsum(~correct)
    last = np.r_[score[1:] != score[:-1], True]  # one point per distinct score
    tp, fp = tp[last].astype(np.float64), fp[last].astype(np.float64)
    recall = np.r_[0.0, tp / n_with_pos]
    precision = np.r_[1.0, tp / np.maximum(tp + fp, 1.0)]
    perfect = recall[np.r_[True, fp == 0]]
    auc = float(np.sum(np.diff(recall) * (precision[1:] + precision[:-1]) / 2.0))
    return {"R@100P": 100.0 * float(perfect.max()), "PR-AUC": 100.0 * auc}


def per_condition_recall(result: RetrievalResult, protocol: EvalProtocol) -> dict[str, float]:
    """R@N per query condition, as ``"R@N [condition]"`` keys (empty without labels)."""
    import numpy as np

    if result.query_conditions is None:
        return {}
    _check_depth(result, required_k(protocol))
    ranking = effective_ranking(result, protocol, max(protocol.recall_ns))
    labels = np.array([c if c is not None else "" for c in result.query_conditions], dtype=object)
    out: dict[str, float] = {}
    for cond in sorted({c for c in result.query_conditions if c is not None}):
        scored = _scored(ranking, protocol, labels == cond)
        if not scored.any():
            log.warning("Condition %r has no scorable query; skipped", cond)
            continue
        for key, value in _recall(ranking, protocol.recall_ns, scored).items():
            out[f"{key} [{cond}]"] = value
        out[f"n_scored [{cond}]"] = float(scored.sum())
    return out


def compute_metrics(
    result: RetrievalResult, protocol: EvalProtocol, evaluators: Iterable[EvaluatorSpec]
) -> MetricsOutcome:
    """Run every evaluator on one kNN result and collect metrics, per-condition values, counts.

    Args:
        result: The shared kNN result (``k >= required_k(protocol, evaluators)`` or the whole
            database).
        protocol: The protocol (N of R@N, no-positive rule, NMS, timestamp dropping).
        evaluators: Evaluator specs; their ``compute`` may be lazy ``"pkg.mod:obj"`` targets.

    Returns:
        The :class:`MetricsOutcome`. Keys ``"<metric> [<condition>]"`` go to ``per_condition``.
        A protocol without local ground truth gets no metrics (counts only).

    Raises:
        UsageError: If the kNN result is too shallow for the evaluators.
        DataError: If the result and the protocol do not fit together.
    """
    import numpy as np

    from vpr_bench.registry import resolve

    specs = list(evaluators)
    _check_depth(result, required_k(protocol, specs))
    n_pos = np.array([len(p) for p in result.positives], dtype=np.int64)
    n_without = int(np.count_nonzero(n_pos == 0))
    n_scored = result.n_queries - (n_without if protocol.no_positive == "exclude" else 0)
    counts = {
        "n_queries": result.n_queries,
        "n_scored": n_scored,
        "n_without_positive": n_without,
        "n_database": result.n_database,
        "k": int(result.knn_idx.shape[1]),
    }
    metrics: dict[str, float] = {}
    per_condition: dict[str, dict[str, float]] = {}
    if not protocol.has_ground_truth:  # predictions only: nothing to score here
        counts["n_scored"] = 0
        return MetricsOutcome(metrics=metrics, per_condition=per_condition, counts=counts)
    for spec in specs:
        compute = resolve(spec.compute)
        for key, value in compute(result, protocol).items():
            match = _CONDITION_KEY.match(key)
            if match is None:
                metrics[key] = float(value)
                continue
            metric, cond = match["metric"], match["condition"]
            if metric.startswith("n_"):
                counts[f"{metric} [{cond}]"] = int(value)
            else:
                per_condition.setdefault(cond, {})[metric] = float(value)
    return MetricsOutcome(metrics=metrics, per_condition=per_condition, counts=counts)
