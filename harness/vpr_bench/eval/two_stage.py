"""Two-stage retrieval: a model's second descriptor re-ranks each query's first ``top_n``.

A model opts in with three attributes (DISAM's coarse-to-fine retrieval, methods.md A.5):

* ``top_n``: how many first-stage neighbours are re-ranked (an int >= 1);
* ``second_stage_dim``: the dimension of the second descriptor (an int >= 1);
* ``second_stage(images, domain=None)``: unit ``[B, second_stage_dim]`` descriptors (the
  ``domain`` keyword only for a model that declares domains).

Evaluation searches with the model's ``forward`` descriptors as usual, extracts the second
descriptors of the database and the queries (:func:`second_stage_model` gives a model whose
forward is ``second_stage``), and :func:`rerank` reorders each query's first ``top_n``
neighbours by their squared L2 distance in the second space, stable (equal distances keep the
first-stage order, as DISAM's strict ``<`` scan over its top-n list does). Neighbours after the
first ``top_n`` keep their first-stage order and distances.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from vpr_bench.errors import UsageError

if TYPE_CHECKING:
    from torch import nn

__all__ = ["rerank", "second_stage_model", "two_stage_of"]


def two_stage_of(model: nn.Module) -> tuple[int, int] | None:
    """``(top_n, second_stage_dim)`` of a model with a second stage, else None.

    Raises:
        UsageError: The model has ``second_stage`` but no valid ``top_n`` or
            ``second_stage_dim``.
    """
    if not callable(getattr(model, "second_stage", None)):
        return None
    top_n = getattr(model, "top_n", None)
    dim = getattr(model, "second_stage_dim", None)
    for name, value in (("top_n", top_n), ("second_stage_dim", dim)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise UsageError(
                f"Model {type(model).__name__} has a second_stage but its {name} is {value!r}; "
                "a two-stage model declares positive integers top_n and second_stage_dim."
            )
    assert isinstance(top_n, int) and isinstance(dim, int)
    return top_n, dim


def second_stage_model(model: nn.Module) -> nn.Module:
    """A module whose forward is ``model.second_stage`` (and declares its dim and domains)."""
    from torch import nn

    stage = two_stage_of(model)
    if stage is None:
        raise UsageError(f"Model {type(model).__name__} has no second_stage.")

    class _SecondStage(nn.Module):
        def __init__(self, inner: nn.Module, dim: int) -> None:
            super().__init__()
            self.inner = inner
            self.descriptor_dim = dim
            domains = getattr(inner, "domains", None)
            if domains:
                self.domains = tuple(domains)

        def forward(self, images: Any, domain: str | None = None) -> Any:
            second = getattr(self.inner, "second_stage")  # noqa: B009 - a method, not a buffer
            return second(images) if domain is None else second(images, domain=domain)

    return _SecondStage(model, stage[1])


def rerank(
    knn_idx: np.ndarray,
    knn_dist: np.ndarray,
    queries: np.ndarray,
    database: np.ndarray,
    top_n: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Reorder each query's first ``top_n`` neighbours by the second descriptors.

    Args:
        knn_idx: ``[Q, k]`` first-stage neighbours (``-1`` pads rows that could not be filled).
        knn_dist: ``[Q, k]`` their first-stage distances.
        queries: ``[Q, D2]`` second-stage query descriptors.
        database: ``[N, D2]`` second-stage database descriptors.
        top_n: How many leading neighbours to reorder.

    Returns:
        ``(idx, dist)`` of the same shapes: the first ``top_n`` columns reordered by squared L2
        distance in the second space (those columns carry these distances), stable; the other
        columns unchanged.
    """
    idx = np.array(knn_idx, copy=True)
    dist = np.array(knn_dist, copy=True)
    n = min(top_n, idx.shape[1])
    queries = np.asarray(queries, dtype=np.float32)
    database = np.asarray(database, dtype=np.float32)
    for q in range(idx.shape[0]):
        head = idx[q, :n]
        valid = head[head >= 0]
        if len(valid) == 0:
            continue
        diff = database[valid] - queries[q]
        second = np.einsum("ij,ij->i", diff, diff)
        order = np.argsort(second, kind="stable")
        idx[q, : len(valid)] = valid[order]
        dist[q, : len(valid)] = second[order]
    return idx, dist
