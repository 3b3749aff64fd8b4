"""Validation during training: R@N on the declared val split (never a test split)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from vpr_bench.data.split import GeoSplit
from vpr_bench.errors import UsageError
from vpr_bench.eval.domains import image_domains
from vpr_bench.specs import Preprocess
from vpr_bench.train.images import ImageTensors, training_descriptors

__all__ = ["check_val_split", "recall_at", "validate", "validate_splits"]


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
    q_desc: torch.Tensor, db_desc: torch.Tensor, split: GeoSplit, positives: tuple[np.ndarray, ...]
) -> dict[str, float]:
    """R@N of ``split``'s protocol through the eval engine (exact kNN, then its metrics)."""
    from vpr_bench.eval.metrics import recall_at_n, required_k
    from vpr_bench.eval.search import knn
    from vpr_bench.runtime import RetrievalResult

    protocol = split.protocol
    assert protocol is not None
    idx, dist = knn(q_desc, db_desc, required_k(protocol), backend="torch", device=q_desc.device)
    if protocol.exclude_self:
        from vpr_bench.data.geo import self_indices
        from vpr_bench.eval.metrics import drop_self

        idx, dist = drop_self(idx, dist, self_indices(split))
    result = RetrievalResult(
        knn_idx=idx,
        knn_dist=dist,
        positives=positives,
        n_database=len(split.database),
        query_conditions=tuple(q.condition for q in split.queries),
        db_place_ids=tuple(r.place_id for r in split.database),
        query_timestamps=tuple(q.timestamp for q in split.queries),
        db_timestamps=tuple(r.timestamp for r in split.database),
    )
    return recall_at_n(result, protocol)


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
    queries = ImageTensors(
        [r.path for r in split.queries], preprocess, size, domains=image_domains(split.queries)
    )
    database = ImageTensors(
        [r.path for r in split.database], preprocess, size, domains=image_domains(split.database)
    )
    q_desc = training_descriptors(
        model, queries, range(len(queries)), device=device, batch_size=batch_size
    )
    db_desc = training_descriptors(
        model, database, range(len(database)), device=device, batch_size=batch_size
    )
    return recall_at(q_desc, db_desc, split, positives)


def validate_splits(
    model: nn.Module,
    splits: Sequence[GeoSplit],
    preprocess: Preprocess,
    *,
    size: tuple[int, int] | None,
    device: torch.device,
    batch_size: int,
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Validate on every split: the metrics that select a checkpoint, and each split's.

    One split: its metrics and ``{}``. Several: the mean of each metric that every split
    reports, and each split's own metrics by split name.
    """
    per_split = {
        split.name: validate(
            model, split, preprocess, size=size, device=device, batch_size=batch_size
        )
        for split in splits
    }
    first = next(iter(per_split.values()))
    if len(per_split) == 1:
        return first, {}
    mean = {
        key: float(np.mean([metrics[key] for metrics in per_split.values()]))
        for key in first
        if all(key in metrics for metrics in per_split.values())
    }
    return mean, per_split
