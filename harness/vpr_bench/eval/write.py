"""The one writer of evaluation outputs: record, predictions and retrieval grid.

Each file is written atomically (temp file, fsync, rename). The predictions file and the grid
are written first and the record last, because the record is what leaderboards read: a record
on disk always has its predictions beside it. When the record cannot be written, the
predictions and grid this call wrote are removed again.
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
    instead, so neither overwrites the other. A lone config keeps the plain path.
    """
    if record.checkpoint_tag != UNTRAINED or "model" not in record.config:
        return record
    existing_path = record_path(records_dir, record)
    if not existing_path.is_file():
        return record
    try:
        existing = json.loads(existing_path.read_text(encoding="utf-8"))
        same = existing["config"]["model"] == record.config["model"]
    except (OSError, ValueError, KeyError, TypeError):
        return record  # unreadable: it is replaced, as before
    if same:
        return record
    tag = f"{UNTRAINED}-{config_hash(record.config['model'])[:8]}"
    log.info(
        "%s holds another %s config; this baseline is tagged %s", existing_path, record.method, tag
    )
    return dataclasses.replace(record, checkpoint_tag=tag)
