"""What a trainer receives (:class:`TrainContext`) and returns (:class:`TrainOutcome`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vpr_bench.runtime import RunEvent

if TYPE_CHECKING:
    from torch import nn

    from vpr_bench.data.split import GeoSplit, ImageRecord
    from vpr_bench.specs import Preprocess

__all__ = ["TrainContext", "TrainOutcome"]


def _ignore(event: RunEvent) -> None:
    del event


@dataclass
class TrainContext:
    """Everything a trainer's ``fit`` needs; built by :func:`vpr_bench.train.api.train_method`.

    Attributes:
        model: The model to train (an ``nn.Module`` with ``descriptor_dim``).
        loss: The loss module, consuming batches of the trainer's kind.
        config: The trainer's config dataclass (e.g. ``TripletMiningConfig``).
        train_split: The training split (queries and database with UTM positions).
        preprocess: The model's input convention (mean, std, scale).
        run_dir: Where checkpoints, logs and the summary go (created if missing).
        val_split: The validation split (never a test split), or None to skip validation.
        val_splits: Several validation splits: each epoch's selection metric is the mean of
            ``trainer.select_metric`` over them (DaCo selects on the mean R@1 of its A->B, B->A
            and A<->B protocols). Empty: ``(val_split,)`` when that is set. When given,
            ``val_split`` becomes their first.
        pairs: Cross-domain image pairs for domain-pair trainers (None otherwise).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"``.
        seed: Seed of every random number generator.
        run_id: Identifies the run in events (the run directory's name by default).
        method: The method name (recorded in checkpoints).
        config_dict: The resolved experiment config, JSON-ready (recorded in checkpoints).
        resume: True to continue from ``run_dir/checkpoints/last.pt``.
        emit: Receives every :class:`RunEvent` (``PluginManager.emit``).
    """

    model: nn.Module
    loss: nn.Module
    config: Any
    train_split: GeoSplit
    preprocess: Preprocess
    run_dir: Path
    val_split: GeoSplit | None = None
    val_splits: tuple[GeoSplit, ...] = ()
    pairs: list[tuple[ImageRecord, ImageRecord]] | None = None
    device: str = "cpu"
    seed: int = 0
    run_id: str = ""
    method: str = ""
    config_dict: Mapping[str, Any] = field(default_factory=dict)
    resume: bool = False
    emit: Callable[[RunEvent], None] = _ignore

    def __post_init__(self) -> None:
        self.run_dir = Path(self.run_dir)
        self.val_splits = tuple(self.val_splits)
        if self.val_splits:
            self.val_split = self.val_splits[0]
        elif self.val_split is not None:
            self.val_splits = (self.val_split,)
        if not self.run_id:
            self.run_id = self.run_dir.name


@dataclass
class TrainOutcome:
    """What a training run produced.

    Attributes:
        run_dir: The run directory.
        best_checkpoint: Model weights with the best validation metric (None without val).
        final_checkpoint: Model weights at the end of training.
        best_val: The best validation metrics (``{"R@1": ..., "R@5": ...}``), empty without val.
        history: One dict per epoch (epoch, loss, lr, val metrics, skipped steps).
        config_dict: The resolved config of the run.
        interrupted: True when the run stopped on Ctrl-C after saving a checkpoint.
    """

    run_dir: Path
    best_checkpoint: Path | None
    final_checkpoint: Path | None
    best_val: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    config_dict: Mapping[str, Any] = field(default_factory=dict)
    interrupted: bool = False

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (written to ``summary.json``)."""
        return {
            "run_dir": str(self.run_dir),
            "best_checkpoint": str(self.best_checkpoint) if self.best_checkpoint else None,
            "final_checkpoint": str(self.final_checkpoint) if self.final_checkpoint else None,
            "best_val": dict(self.best_val),
            "history": list(self.history),
            "interrupted": self.interrupted,
        }
