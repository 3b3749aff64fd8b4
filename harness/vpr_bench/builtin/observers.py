"""Built-in run-event observers: console progress, a JSONL log, TensorBoard when installed.

* Console: one log line per event on the ``vpr_bench.run`` logger (the CLI shows it at INFO).
* JSONL: appends every event to ``<run_dir>/events.jsonl``; the run directory comes from the
  ``run_dir`` of the ``run-started`` payload.
* TensorBoard: scalars of every ``epoch-ended`` event under ``<run_dir>/tensorboard`` when the
  ``tensorboard`` package is importable (nothing happens otherwise).

Nothing heavy is imported at module import time.
"""

from __future__ import annotations

import importlib.util
import json
import logging
from pathlib import Path
from typing import Any

from vpr_bench.hookspecs import hookimpl
from vpr_bench.runtime import RunEvent

__all__ = ["EVENTS_FILE", "reset"]

EVENTS_FILE = "events.jsonl"

log = logging.getLogger("vpr_bench.run")

_run_dirs: dict[str, Path] = {}
_writers: dict[str, Any] = {}


def reset() -> None:
    """Forget every known run (closes TensorBoard writers); used by tests."""
    for writer in _writers.values():
        writer.close()
    _writers.clear()
    _run_dirs.clear()


def _describe(event: RunEvent) -> str:
    p = event.payload
    if event.kind == "epoch-ended":
        val = " ".join(f"{k}={v:.2f}" for k, v in dict(p.get("val") or {}).items())
        splits = dict(p.get("val_splits") or {})
        if splits:
            each = "; ".join(
                f"{name} " + " ".join(f"{k}={v:.2f}" for k, v in dict(metrics).items())
                for name, metrics in splits.items()
            )
            val = f"mean of {len(splits)} val splits {val} ({each})"
        return (
            f"epoch {p.get('epoch')}: loss {p.get('loss', float('nan')):.4f} "
            f"lr {p.get('lr', float('nan')):.2e} {val}".rstrip()
        )
    if event.kind == "run-started":
        return f"run started in {p.get('run_dir')} (epoch {p.get('epoch')}, step {p.get('step')})"
    if event.kind == "checkpoint-saved":
        return f"checkpoint {p.get('path')} (step {p.get('step')})"
    if event.kind == "run-finished":
        return f"run finished: best val {p.get('best_val')}"
    if event.kind == "run-failed":
        return f"run failed: {p.get('error')}"
    return f"{event.kind}: {dict(p)}"


def _console(event: RunEvent) -> None:
    level = logging.DEBUG if event.kind == "checkpoint-saved" else logging.INFO
    if event.kind == "run-failed":
        level = logging.ERROR
    log.log(level, "[%s] %s", event.run_id, _describe(event))


def _jsonl(event: RunEvent) -> None:
    run_dir = _run_dirs.get(event.run_id)
    if run_dir is None:
        return
    line = {
        "kind": event.kind,
        "run_id": event.run_id,
        "time_utc": event.time_utc,
        "payload": dict(event.payload),
    }
    run_dir.mkdir(parents=True, exist_ok=True)
    with (run_dir / EVENTS_FILE).open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(line, sort_keys=True, default=str) + "\n")


def _tensorboard(event: RunEvent) -> None:
    run_dir = _run_dirs.get(event.run_id)
    if run_dir is None or importlib.util.find_spec("tensorboard") is None:
        return
    writer = _writers.get(event.run_id)
    if writer is None:
        from torch.utils.tensorboard import SummaryWriter

        writer = _writers[event.run_id] = SummaryWriter(str(run_dir / "tensorboard"))
    if event.kind == "epoch-ended":
        step = int(event.payload.get("epoch", 0))
        for key in ("loss", "lr"):
            if key in event.payload:
                writer.add_scalar(f"train/{key}", float(event.payload[key]), step)
        for key, value in dict(event.payload.get("val") or {}).items():
            writer.add_scalar(f"val/{key}", float(value), step)
        for name, metrics in dict(event.payload.get("val_splits") or {}).items():
            for key, value in dict(metrics).items():
                writer.add_scalar(f"val/{name}/{key}", float(value), step)
        writer.flush()


@hookimpl
def vpr_bench_run_event(event: RunEvent) -> None:
    """Log the event, append it to the run's events.jsonl, and feed TensorBoard."""
    if event.kind == "run-started" and event.payload.get("run_dir"):
        _run_dirs[event.run_id] = Path(str(event.payload["run_dir"]))
    _console(event)
    _tensorboard(event)
    _jsonl(event)
    if event.kind in ("run-finished", "run-failed"):
        _run_dirs.pop(event.run_id, None)
        if event.run_id in _writers:
            _writers.pop(event.run_id).close()
