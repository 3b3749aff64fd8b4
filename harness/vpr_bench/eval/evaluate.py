"""Evaluation: an :class:`~vpr_bench.eval.job.EvalJob` in, an :class:`EvalResult` out.

:func:`evaluate` extracts (or reads cached) database and query descriptors under the protocol's
resize policies, applies the candidate's PCA-whitening when it has one, searches the kNN once,
runs the harness metrics and every evaluator on the shared result, and returns the record it
would write with the retrieval behind it. It writes nothing: :func:`vpr_bench.eval.write.
write_result` does, so a failed evaluation leaves no file behind.

Under ``torchrun`` every rank extracts its shard; only rank 0 searches and scores, and the
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

from vpr_bench.data.identity import data_identity
from vpr_bench.eval import distributed
from vpr_bench.records import EvalRecord, Timing
from vpr_bench.runtime import RetrievalResult
from vpr_bench.specs import EvaluatorSpec, ModelSpec
from vpr_bench.timing import phase

if TYPE_CHECKING:
    from torch import nn

    from vpr_bench.data.split import ImageRecord
    from vpr_bench.eval.extract import Extraction
    from vpr_bench.eval.job import EvalJob
    from vpr_bench.eval.predictions import Predictions

__all__ = ["GRID_TOP", "EvalResult", "evaluate", "recompute_metrics"]

log = logging.getLogger(__name__)

GRID_TOP = 5
"""Retrieved images shown per query in a retrieval grid."""


@dataclass(frozen=True)
class EvalResult:
    """What :func:`evaluate` computed (nothing of it is on disk yet).

    Attributes:
        job: The job it was computed from.
        record: The record to write.
        retrieval: The kNN result and ground truth the metrics were computed from.
    """

    job: EvalJob
    record: EvalRecord
    retrieval: RetrievalResult


def _labels(records: Sequence[ImageRecord], attr: str) -> tuple[str | None, ...] | None:
    values = tuple(getattr(r, attr) for r in records)
    return values if any(v is not None for v in values) else None


def _model_cache_key(
    model: nn.Module,
    model_spec: ModelSpec,
    weights_sha256: str,
    model_config: Any = None,
) -> str:
    """The cache's model identity: its name, its weights and (when known) its options.

    The options count because two configurations with the same weights may describe images
    differently (DISAM's ``mean-cos`` and ``cos`` descriptors of one set of encoders).
    """
    import hashlib
    import json

    from vpr_bench.weights import state_dict_digest

    key = f"{model_spec.name}:{weights_sha256 or 'state-' + state_dict_digest(model)}"
    if model_config:
        text = json.dumps(model_config, sort_keys=True, default=str)
        key += ":config-" + hashlib.sha256(text.encode()).hexdigest()[:16]
    return key


def _throughput(*parts: Extraction) -> tuple[float, float]:
    # Cached parts count with the time stored when they were computed; one without it is left out.
    timed = [p for p in parts if p.seconds > 0]
    seconds = sum(p.seconds for p in timed)
    images = sum(len(p.descriptors) for p in timed)
    return seconds, (images / seconds if seconds > 0 else 0.0)


def evaluate(job: EvalJob) -> EvalResult | None:
    """Compute the record of ``job`` (writes nothing; see :mod:`vpr_bench.eval.write`).

    Returns:
        An :class:`EvalResult` on rank 0 (always in a single process), None on other ranks.

    Raises:
        UsageError: Bad settings, or a descriptor cache folder that cannot be written.
        DataError: Missing or malformed data.
        VprBenchError: The model returns non-finite or wrongly shaped descriptors.
    """
    from vpr_bench.data.geo import split_positives
    from vpr_bench.eval.cache import DescriptorCache
    from vpr_bench.eval.extract import (
        descriptor_dim,
        extract_with_stats,
        image_domains,
        model_domains,
    )
    from vpr_bench.eval.grouped import grouped_knn, retrieval_groups
    from vpr_bench.eval.metrics import compute_metrics, required_k
    from vpr_bench.eval.search import knn
    from vpr_bench.eval.two_stage import rerank, second_stage_model, two_stage_of
    from vpr_bench.provenance import collect_provenance, peak_gpu_mb, peak_host_mb, reset_peak_gpu

    candidate, settings, geo = job.candidate, job.settings, job.split
    protocol = job.protocol
    model, model_spec = candidate.model, candidate.model_spec
    evaluators = list(job.evaluators)
    dev = settings.device
    reset_peak_gpu(dev)
    positives = split_positives(geo)
    cache = (
        DescriptorCache(
            settings.cache_dir,
            model_key=_model_cache_key(
                model, model_spec, candidate.weights_sha256, candidate.config.get("model")
            ),
        )
        if settings.use_cache
        else None
    )
    options: dict[str, Any] = {
        "device": dev,
        "batch_size": settings.batch_size,
        "num_workers": settings.num_workers,
        "precision": settings.precision,
        "cache": cache,
    }
    pre = model_spec.preprocess
    per_domain = bool(model_domains(model))
    db_domains = image_domains(geo.database) if per_domain else None
    q_domains = image_domains(geo.queries) if per_domain else None
    if cache is not None:  # room for what is not cached yet, before the long extraction
        dim = descriptor_dim(model)
        cache.check_room(
            [
                (
                    cache.key(
                        [r.path for r in images],
                        policy,
                        pre,
                        settings.precision,
                        image_domains(images) if per_domain else None,
                    ),
                    len(images),
                    dim,
                )
                for images, policy in (
                    (geo.database, protocol.db_resize),
                    (geo.queries, protocol.query_resize),
                )
            ]
        )
    sides = (
        (geo.database, protocol.db_resize, "database", db_domains),
        (geo.queries, protocol.query_resize, "queries", q_domains),
    )

    def extract_both(net: Any, stage: str, opts: dict[str, Any]) -> list[Any]:
        """Database then query descriptors of ``net`` (with extraction statistics)."""
        with phase("extract"):
            return [
                extract_with_stats(
                    net,
                    [r.path for r in images],
                    policy,
                    pre,
                    desc=f"{name}{stage}",
                    domains=domains,
                    **opts,
                )
                for images, policy, name, domains in sides
            ]

    db, qs = extract_both(model, "", options)
    if not distributed.is_main_process():
        return None
    db_desc, q_desc = db.descriptors, qs.descriptors
    pca = candidate.pca
    if pca is not None:
        with phase("pca"):
            db_desc, q_desc = pca.apply(np.asarray(db_desc)), pca.apply(np.asarray(q_desc))
    grid_k = GRID_TOP + int(protocol.exclude_self)  # drop_self pads a row's end with -1
    k = max(required_k(protocol, evaluators), grid_k if job.outputs.save_grid else 1)
    stage = two_stage_of(model)
    if stage is not None:
        k = max(k, stage[0])
    groups = retrieval_groups(geo)  # MSLS val: each query searches its own city only
    search_opts: dict[str, Any] = {
        "device": dev,
        "index_factory": None if protocol.exact else protocol.search,
    }
    start = time.perf_counter()
    with phase("search"):
        if groups is None:
            knn_idx, knn_dist = knn(q_desc, db_desc, k, **search_opts)
        else:
            knn_idx, knn_dist = grouped_knn(
                q_desc, db_desc, k, query_groups=groups[0], db_groups=groups[1], **search_opts
            )
    search_s = time.perf_counter() - start
    if protocol.exclude_self:
        from vpr_bench.data.geo import self_indices
        from vpr_bench.eval.metrics import drop_self

        knn_idx, knn_dist = drop_self(knn_idx, knn_dist, self_indices(geo))

    def retrieval(idx: np.ndarray, dist: np.ndarray) -> RetrievalResult:
        return RetrievalResult(
            knn_idx=idx,
            knn_dist=dist,
            positives=positives,
            n_database=len(geo.database),
            query_conditions=_labels(geo.queries, "condition"),
            db_place_ids=_labels(geo.database, "place_id"),
            query_timestamps=_labels(geo.queries, "timestamp"),
            db_timestamps=_labels(geo.database, "timestamp"),
        )

    extractions = [db, qs]
    two_stage: dict[str, Any] | None = None
    if stage is not None:
        first = compute_metrics(retrieval(knn_idx, knn_dist), protocol, evaluators)
        second_model = second_stage_model(model)
        second_cache = (
            DescriptorCache(
                settings.cache_dir,
                model_key=_model_cache_key(
                    model, model_spec, candidate.weights_sha256, candidate.config.get("model")
                )
                + ":second-stage",
            )
            if settings.use_cache
            else None
        )
        second_options = {**options, "cache": second_cache}
        db2, qs2 = extract_both(second_model, " (second stage)", second_options)
        extractions += [db2, qs2]
        start = time.perf_counter()
        with phase("search"):
            knn_idx, knn_dist = rerank(
                knn_idx, knn_dist, qs2.descriptors, db2.descriptors, stage[0]
            )
        search_s += time.perf_counter() - start
        two_stage = {
            "top_n": stage[0],
            "second_stage_dim": stage[1],
            "first_stage_metrics": dict(first.metrics),
        }
    result = retrieval(knn_idx, knn_dist)
    scored = compute_metrics(result, protocol, evaluators)
    extraction_s, images_per_s = _throughput(*extractions)
    timing = Timing(
        extraction_s=extraction_s,
        images_per_s=images_per_s,
        search_s=search_s,
        search_ms_per_query=1000.0 * search_s / len(geo.queries),
        peak_host_mb=peak_host_mb(),
        peak_gpu_mb=peak_gpu_mb(dev),
    )
    full_config = {
        **dict(candidate.config),
        "evaluation": {
            "model": model_spec.name,
            "preprocess": dataclasses.asdict(pre),
            "precision": settings.precision,
            "batch_size": settings.batch_size,
            "pca_dim": pca.n_components if pca is not None else None,
            "descriptor_cache": settings.use_cache,
            "world_size": distributed.world_size(),
            "retrieval_within_groups": groups is not None,
        },
    }
    if two_stage is not None:
        full_config["evaluation"]["two_stage"] = two_stage
    dataset = job.target.spec
    record = EvalRecord(
        benchmark=job.benchmark,
        method=candidate.method,
        checkpoint_tag=candidate.checkpoint_tag,
        profile=candidate.profile,
        weights_sha256=candidate.weights_sha256,
        dataset=dataset.name,
        dataset_version=dataset.version,
        split=job.target.split,
        protocol=protocol.to_dict(),
        protocol_digest=protocol.digest(),
        metrics=dict(scored.metrics),
        per_condition={c: dict(m) for c, m in scored.per_condition.items()},
        counts={"n_database": len(geo.database), **dict(scored.counts)},
        descriptor_dim=int(db_desc.shape[1]),
        trained_on=candidate.trained_on,
        config=full_config,
        data=data_identity(geo),
        provenance=collect_provenance(
            device=dev,
            seed=candidate.seed,
            config=full_config,
            plugin_versions=candidate.plugin_versions,
            command=job.outputs.command,
            uses_faiss=not protocol.exact,
        ),
        timing=timing,
        leaderboard=candidate.leaderboard and protocol.has_ground_truth,
    )
    return EvalResult(job, record, result)


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
