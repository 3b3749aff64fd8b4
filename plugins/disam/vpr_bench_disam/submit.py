"""Grouped retrieval, coarse-to-fine re-ranking and benchmark submissions (methods.md A.5).

DISAM retrieves, for each query, the nearest database image of the query's own slice and camera
(:func:`vpr_bench_disam.seasons.retrieval_groups`) and writes that image's pose as the query's
(``test.py:54-58``): CMU-Seasons ``<query basename> qw qx qy qz tx ty tz`` in
``CMU_eval_<method>.txt``, RobotCar-Seasons ``rear/<timestamp>.jpg qw … tz`` in
``RobotCar_eval_<method>.txt`` (visuallocalization.net's formats, datasets.md 7.1).

Distances are ``-q . d`` of unit descriptors (:mod:`vpr_bench_disam.metrics`: ``-mcos`` or
``-cos``); the reference's strict ``<`` scan keeps the first of equal distances, so every
ranking here is a stable sort.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from vpr_bench import EvalProtocol, RetrievalResult
from vpr_bench.data import GeoSplit
from vpr_bench.errors import DataError
from vpr_bench_disam.seasons import retrieval_groups

__all__ = [
    "SUBMISSION_FILES",
    "export_submission",
    "no_metrics",
    "grouped_top_n",
    "rerank",
    "submission_lines",
    "write_submission",
]

SUBMISSION_FILES = {"cmu": "CMU_eval_{method}.txt", "robotcar": "RobotCar_eval_{method}.txt"}
"""The file each benchmark expects, per dataset kind (``split.extras["submission"]``)."""


def grouped_top_n(
    queries: torch.Tensor,
    database: torch.Tensor,
    query_groups: Sequence[str],
    db_groups: Sequence[str],
    top_n: int = 1,
) -> torch.Tensor:
    """The ``top_n`` nearest database rows of each query within its group, ``[Q, top_n]``.

    Args:
        queries: ``[Q, D]`` unit descriptors.
        database: ``[N, D]`` unit descriptors.
        query_groups: The group of every query.
        db_groups: The group of every database row.
        top_n: How many to keep (the reference's two-stage ``--top_n``).

    Returns:
        Global database indices, nearest first; ties keep database order.

    Raises:
        DataError: A query's group has fewer than ``top_n`` database rows.
    """
    if len(query_groups) != queries.shape[0] or len(db_groups) != database.shape[0]:
        raise ValueError("one group per query and per database row is needed")
    result = torch.empty(queries.shape[0], top_n, dtype=torch.long)
    for group in dict.fromkeys(query_groups):
        q_rows = torch.tensor([i for i, g in enumerate(query_groups) if g == group])
        d_rows = torch.tensor([i for i, g in enumerate(db_groups) if g == group], dtype=torch.long)
        if len(d_rows) < top_n:
            raise DataError(
                f"Group {group} has {len(d_rows)} database images, fewer than top_n = {top_n}; "
                "lower the re-ranking depth."
            )
        distances = -(queries[q_rows] @ database[d_rows].T)
        order = torch.sort(distances, dim=1, stable=True).indices[:, :top_n].cpu()
        result[q_rows] = d_rows[order]
    return result


def rerank(candidates: torch.Tensor, queries: torch.Tensor, database: torch.Tensor) -> torch.Tensor:
    """Coarse-to-fine: of each query's candidates, the one nearest by the second descriptor.

    Args:
        candidates: ``[Q, top_n]`` database indices, first-stage order.
        queries: ``[Q, D']`` second-stage unit descriptors of the queries.
        database: ``[N, D']`` second-stage unit descriptors of the database.

    Returns:
        ``[Q]`` database indices; equal second-stage distances keep first-stage order.
    """
    picked = database[candidates]  # [Q, top_n, D']
    distances = -(picked @ queries.unsqueeze(2)).squeeze(2)
    best = torch.sort(distances, dim=1, stable=True).indices[:, 0]
    return candidates.gather(1, best.unsqueeze(1)).squeeze(1)


def submission_lines(split: GeoSplit, retrieved: Sequence[int]) -> list[str]:
    """One line per query: its name and the retrieved database image's 7 pose values.

    Raises:
        DataError: The split has no poses (not read by the seasons readers), a retrieved index
            is out of range, or a query was given a database image of another group.
    """
    poses = split.extras.get("poses")
    kind = split.extras.get("submission")
    if not isinstance(poses, dict) or kind not in SUBMISSION_FILES:
        raise DataError(
            f"Split {split.name} has no database poses; a submission needs the cmu-seasons or "
            "robotcar-seasons reader."
        )
    if len(retrieved) != len(split.queries):
        raise ValueError(f"{len(retrieved)} retrievals for {len(split.queries)} queries")
    db_groups, query_groups = retrieval_groups(split)
    lines = []
    for number, (query, index) in enumerate(zip(split.queries, retrieved, strict=True)):
        if not 0 <= index < len(split.database):
            raise DataError(f"Query {query.path}: retrieved index {index} is not a database image.")
        if db_groups[index] != query_groups[number]:
            raise DataError(
                f"Query {query.path} ({query_groups[number]}) was given database image "
                f"{split.database[index].path} of {db_groups[index]}; retrieval must stay "
                "within the query's slice and camera."
            )
        name = query.path.name if kind == "cmu" else f"rear/{query.path.name}"
        lines.append(" ".join((name, *poses[split.database[index].path.name])))
    return lines


def write_submission(folder: Path, method: str, split: GeoSplit, lines: Sequence[str]) -> Path:
    """Write ``CMU_eval_<method>.txt`` / ``RobotCar_eval_<method>.txt`` in ``folder`` atomically.

    Returns:
        The written file.
    """
    kind = split.extras.get("submission")
    if kind not in SUBMISSION_FILES:
        raise DataError(f"Split {split.name} is not a CMU/RobotCar-Seasons split.")
    path = folder / SUBMISSION_FILES[str(kind)].format(method=method)
    folder.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=folder)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as out:
            out.write("".join(f"{line}\n" for line in lines))
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def no_metrics(result: RetrievalResult, protocol: EvalProtocol) -> dict[str, float]:
    """``disam-submission``'s metrics: none (the benchmark server scores the submission)."""
    return {}


def export_submission(
    result: RetrievalResult, split: GeoSplit, folder: Path, method: str
) -> Path | None:
    """The evaluator export: the submission file of a CMU/RobotCar-Seasons split, else None.

    The first neighbour of each query (the harness searched within slice and camera; a
    two-stage model's re-ranked first) gives the pose.

    Raises:
        DataError: A query has no neighbour (its group has no database image).
    """
    if split.extras.get("submission") not in SUBMISSION_FILES:
        return None
    first: Any = result.knn_idx[:, 0]
    missing = [q.path for q, i in zip(split.queries, first, strict=True) if int(i) < 0]
    if missing:
        raise DataError(f"Query {missing[0]} has no database image to take its pose from.")
    lines = submission_lines(split, [int(i) for i in first])
    return write_submission(folder, method, split, lines)
