"""Validation during training: R@N on the declared val split (never a test split)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from vpr_bench.data.split import GeoSplit
from vpr_bench.errors import UsageError
from vpr_bench.specs import Preprocess
from vpr_bench.train.images import ImageTensors, extract_descriptors
from vpr_bench.train.mining import DEFAULT_MAX_ELEMENTS, squared_distances

__all__ = ["check_val_split", "recall_at", "validate"]


def check_val_split(split: GeoSplit) -> None:
    """Refuse a split that cannot serve for model selection.

    Raises:
        UsageError: The split has no protocol, or its protocol is a test protocol (name ends in
            ``-test``): selecting checkpoints on a test split leaks the test set.
    """
    protocol = split.protocol
    if protocol is None:
        raise UsageError(
            f"Validation split {split.name} has no evaluation protocol; choose the dataset's "
            "val split (e.g. pitts30k-val)."
        )
    if protocol.name.endswith("-test"):
        raise UsageError(
            f"Refusing to validate on {split.name} (protocol {protocol.name}): checkpoints are "
            "selected on the validation split only, never on a test split. Use the dataset's "
            "val split."
        )


def recall_at(
    q_desc: torch.Tensor, db_desc: torch.Tensor, positives: tuple[np.ndarray, ...], ns: tuple[int, ...]
) -> dict[str, float]:
    """R@N in percent: a query counts at N when one of its N nearest is a positive.

    The search is exact (squared L2), chunked over queries; ties keep database order.
    """
    k = min(max(ns), db_desc.shape[0])
    rows = max(1, DEFAULT_MAX_ELEMENTS // max(1, db_desc.shape[0]))
    parts = []
    for start in range(0, q_desc.shape[0], rows):
        dist = squared_distances(q_desc[start : start + rows], db_desc)
        parts.append(torch.sort(dist, dim=1, stable=True).indices[:, :k].cpu())
    ranked = torch.cat(parts).numpy() if parts else np.empty((0, k), dtype=np.int64)
    first_hit = np.full(len(positives), np.iinfo(np.int64).max, dtype=np.int64)
    for q, pos in enumerate(positives):
        hits = np.flatnonzero(np.isin(ranked[q], pos))
        if hits.size:
            first_hit[q] = hits[0]
    n_q = max(1, len(positives))
    return {f"R@{n}": 100.0 * float((first_hit < n).sum()) / n_q for n in ns}


def validate(
    model: nn.Module,
    split: GeoSplit,
    preprocess: Preprocess,
    *,
    size: tuple[int, int] | None,
    device: torch.device,
    batch_size: int,
) -> dict[str, float]:
    """R@N (the protocol's N) of ``model`` on ``split``, images resized to ``size``."""
    from vpr_bench.data.geo import split_positives

    check_val_split(split)
    assert split.protocol is not None
    positives = split_positives(split)
    queries = ImageTensors([r.path for r in split.queries], preprocess, size)
    database = ImageTensors([r.path for r in split.database], preprocess, size)
    q_desc = extract_descriptors(
        model, queries, range(len(queries)), device=device, batch_size=batch_size
    )
    db_desc = extract_descriptors(
        model, database, range(len(database)), device=device, batch_size=batch_size
    )
    return recall_at(q_desc, db_desc, positives, split.protocol.recall_ns)
