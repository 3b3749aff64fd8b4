"""The one writer of evaluation outputs: record, predictions, evaluator exports and grid.

Each file is written atomically (temp file, fsync, rename). The predictions file and the grid
are written first and the record last, because the record is what leaderboards read: a record
on disk always has its predictions beside it. When the record cannot be written, the
predictions and grid this call wrote are removed again. Evaluators with an ``export``
(:class:`~vpr_bench.specs.EvaluatorSpec`) write their files into ``<predictions stem>.exports/``
beside the predictions file.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from vpr_bench.atomic import NO_SPACE
from vpr_bench.config import config_hash
from vpr_bench.errors import VprBenchError
from vpr_bench.eval.evaluate import GRID_TOP, EvalResult
from vpr_bench.records import EvalRecord, record_path, write_record
from vpr_bench.registry import resolve

__all__ = ["EvalOutcome", "distinct_untrained", "write_result"]

UNTRAINED = "untrained"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvalOutcome:
    """What :func:`write_result` wrote.

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


def write_result(result: EvalResult) -> EvalOutcome:
    """Write the record, the predictions file and (when asked for) the grid of ``result``.

    Raises:
        VprBenchError: A file could not be written (disk full, no permission); the message
            names it, and nothing of this call is left behind.
    """
    from vpr_bench.eval.predictions import relative_names, save_predictions

    job, record, retrieval = result.job, result.record, result.retrieval
    geo, outputs = job.split, job.outputs
    root = geo.root or job.target.root
    record = distinct_untrained(record, Path(outputs.records_dir))
    record = same_run_record(record, Path(outputs.records_dir))
    rec_path = record_path(Path(outputs.records_dir), record)
    stem = record_path(Path(outputs.predictions_dir), record)
    written: list[Path] = []
    current = stem.with_suffix(".predictions.npz")
    try:
        predictions_path = save_predictions(
            current,
            result=retrieval,
            protocol=job.protocol,
            query_names=relative_names([r.path for r in geo.queries], root),
            db_names=relative_names([r.path for r in geo.database], root),
            counts=record.counts,
            metrics=record.metrics,
            per_condition=record.per_condition,
            meta={
                "root": str(Path(root).resolve()),
                "benchmark": record.benchmark,
                "method": record.method,
                "checkpoint_tag": record.checkpoint_tag,
                "dataset": record.dataset,
                "split": record.split,
                "evaluators": [e.name for e in job.evaluators],
                "record": str(rec_path),
            },
        )
        written.append(predictions_path)
        exports = stem.with_suffix(".exports")
        for evaluator in job.evaluators:
            if evaluator.export is None:
                continue
            current = exports
            exported = resolve(evaluator.export)(retrieval, geo, exports, record.method)
            if exported is not None:
                written.append(Path(exported))
                log.info("%s wrote %s", evaluator.name, exported)
        grid_path = None
        if outputs.save_grid:
            from vpr_bench.eval.visualize import pick_queries, render_grid

            current = stem.with_suffix(".grid.png")
            grid_path = render_grid(
                current,
                query_paths=[r.path for r in geo.queries],
                db_paths=[r.path for r in geo.database],
                knn_idx=retrieval.knn_idx,
                positives=retrieval.positives,
                queries=list(pick_queries(len(geo.queries), outputs.save_grid)),
                top=GRID_TOP,
            )
            written.append(grid_path)
        current = rec_path
        write_record(record, rec_path)
    except BaseException as exc:
        for path in written:
            path.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            reason = exc.strerror or str(exc)
            fix = (
                "Free disk space or choose another --out"
                if exc.errno in NO_SPACE
                else "Choose an --out you can write to"
            )
            raise VprBenchError(
                f"Cannot write {exc.filename or current}: {reason}; no result of "
                f"{record.method} on {record.dataset}-{record.split} was kept (record and "
                f"predictions go together). {fix}, then run the evaluation again."
            ) from exc
        raise
    log.info("record written: %s", rec_path)
    return EvalOutcome(record, rec_path, predictions_path, grid_path)


def distinct_untrained(record: EvalRecord, records_dir: Path) -> EvalRecord:
    """``record``, re-tagged ``untrained-<digest>`` when its plain path holds another config.

    Untrained baselines are filed under ``<model>.untrained/``. When a record there was made
    from a different model config (two configs of one model in one run, or another profile
    earlier), this one is tagged with the first 8 hex digits of its model config's digest
    instead, so neither overwrites the other; when only the seed differs (``--seeds``), with
    the digest of the model config and the seed. A lone config keeps the plain path.
    """
    if record.checkpoint_tag != UNTRAINED or "model" not in record.config:
        return record
    existing_path = record_path(records_dir, record)
    if not existing_path.is_file():
        return record
    identity = {"model": record.config["model"], "seed": record.config.get("seed")}
    try:
        existing = json.loads(existing_path.read_text(encoding="utf-8"))
        same = (
            existing["config"]["model"] == identity["model"]
            and existing["config"].get("seed") == identity["seed"]
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return record  # unreadable: it is replaced, as before
    if same:
        return record
    # The model config alone names a config's baseline (as before); with the seed when only
    # the seed differs (a --seeds run: one baseline per seed).
    same_model = existing.get("config", {}).get("model") == identity["model"]
    tag = f"{UNTRAINED}-{config_hash(identity if same_model else identity['model'])[:8]}"
    log.info(
        "%s holds another %s config; this baseline is tagged %s", existing_path, record.method, tag
    )
    return dataclasses.replace(record, checkpoint_tag=tag)


def same_run_record(record: EvalRecord, records_dir: Path) -> EvalRecord:
    """``record``, re-tagged to replace an earlier record of the very same result.

    A rerun that reproduces a trained result (the same weights, sha256 equal, from the same
    resolved config and seed, on the same dataset version and split under the same protocol)
    would otherwise add a second, identical row under its new run name. It takes the earlier
    record's tag instead, so its record and predictions replace the earlier ones. Untrained
    baselines and weights without a sha256 are left as they are.
    """
    if record.checkpoint_tag.startswith(UNTRAINED) or not record.weights_sha256:
        return record
    folder = Path(records_dir) / record.benchmark
    name = record_path(Path(records_dir), record).name  # dataset, split and data identity
    for path in sorted(folder.glob(f"{record.method}.*/{name}")):
        try:
            earlier = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(earlier, dict):
            continue
        same = (
            earlier.get("method") == record.method
            and earlier.get("weights_sha256") == record.weights_sha256
            and earlier.get("config") == record.config
            and earlier.get("dataset_version") == record.dataset_version
            and (earlier.get("data") or {}) == dict(record.data)
            and earlier.get("protocol_digest") == record.protocol_digest
            and (earlier.get("provenance") or {}).get("seed") == record.provenance.seed
            and isinstance(earlier.get("checkpoint_tag"), str)
        )
        if same and earlier["checkpoint_tag"] != record.checkpoint_tag:
            log.info(
                "%s is the same result (weights %s, same config and data): replacing it",
                path,
                record.weights_sha256[:12],
            )
            return dataclasses.replace(record, checkpoint_tag=earlier["checkpoint_tag"])
    return record
