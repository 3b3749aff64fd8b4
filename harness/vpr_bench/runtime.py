"""Objects the harness hands to plugins at run time: kNN results and run events."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

__all__ = ["RetrievalResult", "RunEvent"]


@dataclass(frozen=True)
class RetrievalResult:
    """One kNN result shared by every evaluator of a run.

    Attributes:
        knn_idx: ``[Q, K]`` int64 database indices, nearest first, ties in database order.
        knn_dist: ``[Q, K]`` float32 L2 distances matching ``knn_idx``.
        positives: One int64 array of positive database indices per query.
        n_database: Number of database items.
        query_conditions: Condition label per query, or None.
        db_place_ids: Place id per database item (for place NMS), or None.
        query_timestamps: Timestamp per query (for same-timestamp dropping), or None.
        db_timestamps: Timestamp per database item, or None.
    """

    knn_idx: np.ndarray
    knn_dist: np.ndarray
    positives: tuple[np.ndarray, ...]
    n_database: int
    query_conditions: tuple[str | None, ...] | None = None
    db_place_ids: tuple[str | None, ...] | None = None
    query_timestamps: tuple[str | None, ...] | None = None
    db_timestamps: tuple[str | None, ...] | None = None

    def __post_init__(self) -> None:
        if self.knn_idx.shape != self.knn_dist.shape or self.knn_idx.ndim != 2:
            raise ValueError(
                f"RetrievalResult: knn_idx {self.knn_idx.shape} and knn_dist "
                f"{self.knn_dist.shape} must be equal [Q, K] arrays."
            )
        if len(self.positives) != self.knn_idx.shape[0]:
            raise ValueError(
                f"RetrievalResult: {len(self.positives)} positive lists for "
                f"{self.knn_idx.shape[0]} queries."
            )

    @property
    def n_queries(self) -> int:
        """Number of queries."""
        return int(self.knn_idx.shape[0])


@dataclass(frozen=True)
class RunEvent:
    """Something that happened in a run, sent to every ``vpr_bench_run_event`` observer.

    Attributes:
        kind: One of ``run-started``, ``epoch-ended``, ``checkpoint-saved``, ``eval-finished``,
            ``run-finished``, ``run-failed`` (observers ignore kinds they do not know).
        run_id: Identifies the run (its directory name).
        payload: JSON-ready details (loss, lr, metrics, paths).
        time_utc: ISO-8601 UTC time.
    """

    kind: str
    run_id: str
    payload: Mapping[str, Any] = field(default_factory=dict)
    time_utc: str = ""

    def __post_init__(self) -> None:
        if not self.kind:
            raise ValueError("RunEvent needs a kind.")
