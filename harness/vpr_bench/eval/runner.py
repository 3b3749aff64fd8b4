"""Evaluation orchestration: split -> descriptors (cache) -> PCA? -> kNN -> metrics -> outputs.

:func:`evaluate` is the one call that ``vpr-bench eval`` and ``vpr-bench run`` make: it loads the
dataset split, extracts (or reads cached) database and query descriptors under the protocol's
resize policies, applies the method's PCA-whitening when given, searches the kNN once, runs the
harness metrics and every evaluator on the shared result, and writes

* the :class:`~vpr_bench.records.EvalRecord` at ``record_path(records_dir, record)``,
* a predictions file beside it (``<dataset>.<split>.predictions.npz`` under ``out_dir``), from
  which :func:`recompute_metrics` gets the same metrics without re-extracting,
* optionally a retrieval grid PNG (``<dataset>.<split>.grid.png``).

Under ``torchrun`` every rank extracts its shard; only rank 0 searches and writes, and the
other ranks get None.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vpr_bench.errors import DataError, UsageError
from vpr_bench.eval import distributed
from vpr_bench.protocol import EvalProtocol
from vpr_bench.records import EvalRecord, Timing, record_path, write_record
from vpr_bench.registry import resolve
from vpr_bench.runtime import RetrievalResult
from vpr_bench.specs import DatasetSpec, EvaluatorSpec, ModelSpec

if TYPE_CHECKING:
    import torch
    from torch import nn

    from vpr_bench.data.split import GeoSplit, ImageRecord
    from vpr_bench.eval.extract import Extraction
    from vpr_bench.eval.predictions import Predictions
    from vpr_bench.weights import PcaWhitening

__all__ = ["GRID_TOP", "EvalOutcome", "evaluate", "load_split", "recompute_metrics"]

log = logging.getLogger(__name__)

GRID_TOP = 5
"""Retrieved images shown per query in a retrieval grid."""


@dataclass(frozen=True)
class EvalOutcome:
    """What :func:`evaluate` wrote.

    Attributes:
        record: The record (also on disk at ``record_path``).
        record_path: Where the record JSON was written.
        predictions_path: The predictions ``.npz``.
        grid_path: The retrieval grid PNG, or None when not asked for.
    """

    record: EvalRecord
    record_path: Path
    predictions_path: Path
    grid_path: Path | None


def load_split(dataset: DatasetSpec, split: str, root: Path, protocol: EvalProtocol) -> GeoSplit:
    """Load ``split`` of ``dataset`` from ``root`` and attach ``protocol``.

    Raises:
        UsageError: ``split`` is not one of the dataset's splits.
        DataError: The reader found no database or no query images.
    """
    if split not in dataset.splits:
        raise UsageError(
            f"Dataset {dataset.name} has no split {split!r}; its splits are "
            f"{', '.join(dataset.splits)}."
        )
    geo: GeoSplit = resolve(dataset.load)(Path(root), split)
    if not geo.database or not geo.queries:
        raise DataError(
            f"Split {geo.name} under {root} has {len(geo.database)} database and "
            f"{len(geo.queries)} query images; evaluation needs both."
        )
    if geo.protocol != protocol:
        geo = dataclasses.replace(geo, protocol=protocol)
    return geo


def _labels(records: Sequence[ImageRecord], attr: str) -> tuple[str | None, ...] | None:
    values = tuple(getattr(r, attr) for r in records)
    return values if any(v is not None for v in values) else None


def _model_cache_key(model: nn.Module, model_spec: ModelSpec, weights_sha256: str) -> str:
    from vpr_bench.weights import state_dict_digest

    return f"{model_spec.name}:{weights_sha256 or 'state-' + state_dict_digest(model)}"


def _throughput(*parts: Extraction) -> tuple[float, float]:
    fresh = [p for p in parts if not p.from_cache]
    seconds = sum(p.seconds for p in fresh)
    images = sum(len(p.descriptors) for p in fresh)
    return seconds, (images / seconds if seconds > 0 else 0.0)


def evaluate(
    model: nn.Module,
    *,
    method_name: str,
    model_spec: ModelSpec,
    dataset: DatasetSpec,
    split: str,
    root: Path,
    out_dir: Path,
    benchmark: str,
    checkpoint_tag: str,
    weights_sha256: str,
    trained_on: str,
    evaluators: Sequence[EvaluatorSpec],
    protocol: EvalProtocol | None = None,
    profile: str = "",
    config: Mapping[str, Any] | None = None,
    seed: int = 0,
    device: torch.device | str = "cpu",
    pca: PcaWhitening | None = None,
    leaderboard: bool = True,
    plugin_versions: Mapping[str, str] | None = None,
    batch_size: int = 32,
    num_workers: int = 0,
    precision: str = "fp32",
    use_cache: bool = True,
    cache_dir: Path | None = None,
    save_grid: int = 0,
    records_dir: Path | None = None,
    command: str | None = None,
) -> EvalOutcome | None:
    """Evaluate ``model`` on one dataset split under its protocol and write the outputs.

    Args:
        model: The built model (weights loaded); moved to ``device``, evaluated in eval mode.
        method_name: The record's ``method`` (a method name, or the model name for bare models).
        model_spec: The model's spec (its ``preprocess`` is used and recorded).
        dataset: The dataset spec.
        split: The split to evaluate.
        root: The dataset root folder.
        out_dir: Where predictions and grids go (and records, unless ``records_dir``).
        benchmark: The leaderboard group of the record.
        checkpoint_tag: Weights tag (``"untrained"`` when none).
        weights_sha256: sha256 of the weights file (``""`` when none).
        trained_on: Training set name, or ``""``.
        evaluators: Evaluators run on the shared kNN result, besides the harness metrics.
        protocol: Override the split's protocol (default: the dataset's protocol of ``split``).
        profile: Config profile name, or ``""``.
        config: The resolved config, recorded and hashed (evaluation settings are added).
        seed: The run's seed (recorded).
        device: Torch device (``cuda`` becomes ``cuda:<LOCAL_RANK>`` under torchrun).
        pca: PCA-whitening applied to both descriptor sets before search.
        leaderboard: False keeps the record off leaderboards.
        plugin_versions: ``{distribution: version}`` of the plugins involved.
        batch_size: Extraction batch size.
        num_workers: DataLoader workers.
        precision: ``"fp32"`` (protocol parity), ``"bf16"`` or ``"fp16"``.
        use_cache: Read and write the descriptor cache.
        cache_dir: Cache folder (default ``$VPR_BENCH_CACHE`` or ``~/.cache/vpr-bench/...``).
        save_grid: Render a retrieval grid of this many queries (0: none).
        records_dir: Where the record goes (default: ``out_dir``).
        command: The command line recorded in the provenance (default: ``sys.argv``).

    Returns:
        An :class:`EvalOutcome` on rank 0 (always in a single process), None on other ranks.

    Raises:
        UsageError: The split has no protocol, or bad settings.
        DataError: Missing or malformed data.
    """
    from vpr_bench.data.geo import split_positives
    from vpr_bench.eval.cache import DescriptorCache
    from vpr_bench.eval.extract import extract_with_stats
    from vpr_bench.eval.grouped import grouped_knn, retrieval_groups
    from vpr_bench.eval.metrics import compute_metrics, required_k
    from vpr_bench.eval.predictions import relative_names, save_predictions
    from vpr_bench.eval.search import knn
    from vpr_bench.provenance import collect_provenance, peak_gpu_mb, peak_host_mb, reset_peak_gpu

    if split not in dataset.splits:
        raise UsageError(
            f"Dataset {dataset.name} has no split {split!r}; its splits are "
            f"{', '.join(dataset.splits)}."
        )
    protocol = protocol or dataset.protocol_for(split)
    if protocol is None:
        raise UsageError(
            f"Split {split!r} of dataset {dataset.name} has no evaluation protocol (it is a "
            "training split). See: vpr-bench list protocols."
        )
    if save_grid < 0:
        raise UsageError(f"--save-grid must be >= 0, got {save_grid}.")
    dev = distributed.local_device(device)
    reset_peak_gpu(dev)
    geo = load_split(dataset, split, root, protocol)
    positives = split_positives(geo)
    cache = (
        DescriptorCache(cache_dir, model_key=_model_cache_key(model, model_spec, weights_sha256))
        if use_cache
        else None
    )
    options: dict[str, Any] = {
        "device": dev,
        "batch_size": batch_size,
        "num_workers": num_workers,
        "precision": precision,
        "cache": cache,
    }
    pre = model_spec.preprocess
    db = extract_with_stats(
        model, [r.path for r in geo.database], protocol.db_resize, pre, desc="database", **options
    )
    qs = extract_with_stats(
        model, [r.path for r in geo.queries], protocol.query_resize, pre, desc="queries", **options
    )
    if not distributed.is_main_process():
        return None
    db_desc, q_desc = db.descriptors, qs.descriptors
    if pca is not None:
        db_desc, q_desc = pca.apply(np.asarray(db_desc)), pca.apply(np.asarray(q_desc))
    k = max(required_k(protocol, evaluators), GRID_TOP if save_grid else 1)
    groups = retrieval_groups(geo)  # MSLS val: each query searches its own city only
    search_opts: dict[str, Any] = {
        "device": dev,
        "index_factory": None if protocol.exact else protocol.search,
    }
    start = time.perf_counter()
    if groups is None:
        knn_idx, knn_dist = knn(q_desc, db_desc, k, **search_opts)
    else:
        knn_idx, knn_dist = grouped_knn(
            q_desc, db_desc, k, query_groups=groups[0], db_groups=groups[1], **search_opts
        )
    search_s = time.perf_counter() - start
    result = RetrievalResult(
        knn_idx=knn_idx,
        knn_dist=knn_dist,
        positives=positives,
        n_database=len(geo.database),
        query_conditions=_labels(geo.queries, "condition"),
        db_place_ids=_labels(geo.database, "place_id"),
        query_timestamps=_labels(geo.queries, "timestamp"),
        db_timestamps=_labels(geo.database, "timestamp"),
    )
    scored = compute_metrics(result, protocol, evaluators)
    extraction_s, images_per_s = _throughput(db, qs)
    timing = Timing(
        extraction_s=extraction_s,
        images_per_s=images_per_s,
        search_s=search_s,
        search_ms_per_query=1000.0 * search_s / len(geo.queries),
        peak_host_mb=peak_host_mb(),
        peak_gpu_mb=peak_gpu_mb(dev),
    )
    full_config = {
        **dict(config or {}),
        "evaluation": {
            "model": model_spec.name,
            "preprocess": dataclasses.asdict(pre),
            "precision": precision,
            "batch_size": batch_size,
            "pca_dim": pca.n_components if pca is not None else None,
            "descriptor_cache": use_cache,
            "world_size": distributed.world_size(),
            "retrieval_within_groups": groups is not None,
        },
    }
    counts = {"n_database": len(geo.database), **dict(scored.counts)}
    record = EvalRecord(
        benchmark=benchmark,
        method=method_name,
        checkpoint_tag=checkpoint_tag,
        profile=profile,
        weights_sha256=weights_sha256,
        dataset=dataset.name,
        dataset_version=dataset.version,
        split=split,
        protocol=protocol.to_dict(),
        protocol_digest=protocol.digest(),
        metrics=dict(scored.metrics),
        per_condition={c: dict(m) for c, m in scored.per_condition.items()},
        counts=counts,
        descriptor_dim=int(db_desc.shape[1]),
        trained_on=trained_on,
        config=full_config,
        provenance=collect_provenance(
            device=dev,
            seed=seed,
            config=full_config,
            plugin_versions=plugin_versions,
            command=command,
            uses_faiss=not protocol.exact,
        ),
        timing=timing,
        leaderboard=leaderboard,
    )
    rec_path = write_record(record, record_path(Path(records_dir or out_dir), record))
    stem = record_path(Path(out_dir), record)
    predictions_path = save_predictions(
        stem.with_suffix(".predictions.npz"),
        result=result,
        protocol=protocol,
        query_names=relative_names([r.path for r in geo.queries], geo.root or root),
        db_names=relative_names([r.path for r in geo.database], geo.root or root),
        counts=counts,
        metrics=record.metrics,
        per_condition=record.per_condition,
        meta={
            "root": str(Path(geo.root or root).resolve()),
            "benchmark": benchmark,
            "method": method_name,
            "checkpoint_tag": checkpoint_tag,
            "dataset": dataset.name,
            "split": split,
            "evaluators": [e.name for e in evaluators],
            "record": str(rec_path),
        },
    )
    grid_path = None
    if save_grid:
        from vpr_bench.eval.visualize import pick_queries, render_grid

        grid_path = render_grid(
            stem.with_suffix(".grid.png"),
            query_paths=[r.path for r in geo.queries],
            db_paths=[r.path for r in geo.database],
            knn_idx=knn_idx,
            positives=positives,
            queries=list(pick_queries(len(geo.queries), save_grid)),
            top=GRID_TOP,
        )
    log.info("record written: %s", rec_path)
    return EvalOutcome(record, rec_path, predictions_path, grid_path)


def recompute_metrics(
    path: Path, evaluators: Sequence[EvaluatorSpec]
) -> tuple[Predictions, Mapping[str, float], Mapping[str, Mapping[str, float]]]:
    """Recompute the metrics of a predictions file (no images, no model).

    Returns:
        ``(predictions, metrics, per_condition)``: the loaded file and the recomputed numbers
        (compare them with ``predictions.metrics``).
    """
    from vpr_bench.eval.metrics import compute_metrics
    from vpr_bench.eval.predictions import load_predictions

    predictions = load_predictions(path)
    scored = compute_metrics(predictions.result, predictions.protocol, evaluators)
    return predictions, dict(scored.metrics), {c: dict(m) for c, m in scored.per_condition.items()}
