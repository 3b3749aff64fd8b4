"""Built-in evaluators: R@N, mAP@N, PR metrics from top-1 scores, per-condition R@N.

The computations live in :mod:`vpr_bench.eval.metrics` (definitions in its docstring) and are
referenced lazily, so registering them imports no numpy or torch.
"""

from __future__ import annotations

from collections.abc import Iterator

from vpr_bench.hookspecs import hookimpl
from vpr_bench.specs import EvaluatorSpec, MetricSpec

_COMMON_NS = (1, 5, 10, 20)


@hookimpl
def vpr_bench_evaluators() -> Iterator[EvaluatorSpec]:
    """Register ``recall``, ``map``, ``pr`` and ``per-condition``."""
    yield EvaluatorSpec(
        name="recall",
        metrics=tuple(
            MetricSpec(f"R@{n}", f"Queries with a positive among the first {n} (percent)")
            for n in _COMMON_NS
        ),
        compute="vpr_bench.eval.metrics:recall_at_n",
        summary="R@N for the protocol's N (fail/exclude rule, place NMS, timestamp dropping)",
    )
    yield EvaluatorSpec(
        name="map",
        metrics=tuple(
            MetricSpec(f"mAP@{n}", f"Mean average precision over the first {n} (MSLS apk)")
            for n in _COMMON_NS
        ),
        compute="vpr_bench.eval.metrics:map_at_n",
        summary="mAP@N as the official MSLS evaluation",
    )
    yield EvaluatorSpec(
        name="pr",
        metrics=(
            MetricSpec("R@100P", "Recall at 100 % precision of the top-1 score curve"),
            MetricSpec("PR-AUC", "Area under the precision-recall curve of top-1 scores"),
        ),
        compute="vpr_bench.eval.metrics:pr_metrics",
        requires_knn=1,
        summary="Recall@100% precision and PR-AUC from top-1 scores (VPR-Bench convention)",
    )
    yield EvaluatorSpec(
        name="per-condition",
        metrics=tuple(
            MetricSpec(f"R@{n} [<condition>]", f"R@{n} over the queries of one condition")
            for n in _COMMON_NS
        ),
        compute="vpr_bench.eval.metrics:per_condition_recall",
        summary="R@N per query condition (day/night/...) where the dataset labels them",
    )
