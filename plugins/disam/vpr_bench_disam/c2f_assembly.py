"""``disam``'s "training": assemble the coarse-to-fine model from the latest finished
``disam-coarse`` and ``disam-fine`` runs beside its own run folder (no steps are taken)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vpr_bench import RunEvent
from vpr_bench.errors import ConfigError
from vpr_bench.train import TrainContext, TrainOutcome, load_train_state, save_train_state
from vpr_bench_disam.model import DisamC2FModel

__all__ = ["COARSE_METHOD", "FINE_METHOD", "assemble_c2f", "emit", "sibling_weights"]

log = logging.getLogger(__name__)


def emit(ctx: TrainContext, kind: str, payload: dict[str, Any]) -> None:
    """Send a run event of ``kind`` with ``payload`` to ``ctx.emit``, stamped now (UTC)."""
    now = datetime.now(UTC).isoformat(timespec="seconds")
    ctx.emit(RunEvent(kind, ctx.run_id, payload, now))


COARSE_METHOD, FINE_METHOD = "disam-coarse", "disam-fine"
"""The methods whose runs a coarse-to-fine model reuses."""


def sibling_weights(run_dir: Path, method: str) -> Path:
    """The final weights of the latest finished run of ``method`` beside ``run_dir``.

    Runs live in ``<runs dir>/<method>/<timestamp>/``; the latest timestamp whose
    ``checkpoints/final.pt`` exists is taken.

    Raises:
        ConfigError: No finished run of ``method``.
    """
    folder = run_dir.parent.parent / method
    finished = sorted(p for p in folder.glob("*/checkpoints/final.pt")) if folder.is_dir() else []
    if not finished:
        raise ConfigError(
            f"The coarse-to-fine model reuses the weights of a finished {method} run, but "
            f"{folder} holds none; train {COARSE_METHOD} and {FINE_METHOD} first (e.g. "
            f"vpr-bench run --methods {COARSE_METHOD},{FINE_METHOD},disam ...)."
        )
    return finished[-1]


def assemble_c2f(ctx: TrainContext, model: DisamC2FModel) -> TrainOutcome:
    """``disam``: no training; the coarse and fine models are the latest runs' weights."""
    for part, method in ((model.coarse, COARSE_METHOD), (model.fine, FINE_METHOD)):
        path = sibling_weights(ctx.run_dir, method)
        state, _meta = load_train_state(path)
        weights = state.get("model")
        if not isinstance(weights, dict):
            raise ConfigError(f"{path} holds no model weights.")
        try:
            part.load_state_dict(weights, strict=True)
        except RuntimeError as exc:
            first = str(exc).splitlines()[0]
            raise ConfigError(
                f"{path} ({method}) does not fit the coarse-to-fine model's "
                f"{'coarse' if part is model.coarse else 'fine'} part: {first}; train it with "
                "the same model.* options."
            ) from None
        log.info("disam: %s weights from %s", method, path)
        emit(ctx, "checkpoint-loaded", {"path": str(path), "method": method})
    ckpt_dir = ctx.run_dir / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    final = save_train_state(
        ckpt_dir / "final.pt",
        {"model": model.state_dict()},
        {"method": ctx.method, "kind": "weights", "reused": [COARSE_METHOD, FINE_METHOD]},
    )
    return TrainOutcome(
        run_dir=ctx.run_dir,
        best_checkpoint=None,
        final_checkpoint=final,
        config_dict=ctx.config_dict,
    )
