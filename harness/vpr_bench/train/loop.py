"""The resumable training loop shared by the built-in trainers.

A trainer supplies a :class:`Paradigm`: per epoch some rounds, per round a *plan* (an int64
``[rows, k]`` tensor of image indices: tuples, place batches or domain pairs) and a loss over a
slice of plan rows. The :class:`Engine` owns everything else: optimiser and schedule, AMP,
gradient accumulation and clipping, the non-finite-loss guard, validation and best-checkpoint
selection, early stopping, checkpoints (every N steps, each epoch end, on Ctrl-C) and exact
resumption, DDP, and run events.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from contextlib import nullcontext
from typing import Any, Protocol

import numpy as np
import torch
import torch.distributed as dist

from vpr_bench.device import resolve_device
from vpr_bench.errors import VprBenchError
from vpr_bench.runtime import RunEvent
from vpr_bench.train import state as train_state
from vpr_bench.train.augment import ColorJitter
from vpr_bench.train.context import TrainContext, TrainOutcome
from vpr_bench.train.distributed import DistInfo, init_distributed, unwrap, wrap_model
from vpr_bench.train.images import ImageTensors
from vpr_bench.train.schedule import build_optimizer, build_scheduler
from vpr_bench.train.setup import amp_dtype, seed_everything
from vpr_bench.train.validate import check_val_split, validate_splits

__all__ = [
    "Engine",
    "EpochHooks",
    "NonFiniteLossError",
    "Paradigm",
    "TrainingInterruptedError",
    "seed_everything",
]

log = logging.getLogger(__name__)


class NonFiniteLossError(VprBenchError):
    """Too many consecutive steps produced a NaN or infinite loss."""


class TrainingInterruptedError(VprBenchError):
    """Ctrl-C stopped the run after a checkpoint was saved (exit code 130)."""

    exit_code = 130


class Paradigm(Protocol):
    """How a trainer turns training data into batches and a loss (see module docstring)."""

    def rounds(self, epoch: int) -> int:
        """Number of rounds (plans) in ``epoch``."""

    def make_plan(self, engine: Engine, epoch: int, round_idx: int) -> torch.Tensor:
        """The ``[rows, k]`` plan of a round; identical on every rank."""

    def loss(self, engine: Engine, rows: torch.Tensor) -> torch.Tensor:
        """The mean loss of plan ``rows`` (this rank's share of a batch)."""

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Tensor state to checkpoint (e.g. the negative cache)."""

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore :meth:`state_dict`."""


class EpochHooks(Protocol):
    """Optional methods a :class:`Paradigm` may add to shape the run beyond plain epochs.

    The region-generations trainer uses them to run generations: each generation a fresh
    optimiser and schedule, a teacher, a re-initialised student.
    """

    def total_epochs(self) -> int:
        """Epochs in the whole run (default: ``trainer.epochs``)."""

    def begin_epoch(self, engine: Engine, epoch: int) -> None:
        """Prepare ``epoch`` before its first round.

        Also called after resuming at the epoch's start, not when resuming in its middle; it
        must be deterministic given the restored state.
        """

    def epoch_info(self, epoch: int) -> dict[str, Any]:
        """Extra fields of the epoch's history record and ``epoch-ended`` event."""


class Engine:
    """Runs a :class:`Paradigm` under a :class:`TrainContext`.

    Args:
        ctx: The run's context; ``ctx.config`` is a :class:`~vpr_bench.train.options.LoopConfig`
            (or subclass).
        batch_rows: Plan rows per micro-batch (global, over all ranks).

    Attributes:
        epoch: The run epoch being trained (0-based).
        step: Optimiser steps taken so far.
    """

    def __init__(self, ctx: TrainContext, batch_rows: int) -> None:
        self.ctx = ctx
        self.cfg = ctx.config
        if batch_rows < 1 or self.cfg.accum_steps < 1:
            raise VprBenchError("batch size and trainer.accum_steps must be >= 1.")
        self.batch_rows = batch_rows
        self.info: DistInfo = init_distributed(ctx.device)
        self.device = resolve_device(ctx.device)
        seed_everything(ctx.seed, self.cfg.deterministic)
        for split in ctx.val_splits:
            check_val_split(split)
        self.model = ctx.model.to(self.device)
        self.loss_fn = ctx.loss.to(self.device)
        self.ddp_model = wrap_model(
            self.model, self.info, sync_bn=self.cfg.sync_bn, device=self.device
        )
        self.optimizer = build_optimizer(self.model.parameters(), self.cfg)
        self.scheduler = build_scheduler(self.optimizer, self.cfg)
        self.amp_dtype = amp_dtype(self.device, self.cfg.amp)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype is torch.float16)
        self.ckpt_dir = ctx.run_dir / "checkpoints"
        self.step = 0
        self.epoch = 0
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, float] = {}
        self.bad_epochs = 0
        self.skipped = 0
        self._epoch_losses: list[float] = []
        self._bad_run = 0
        self._safe: tuple[int, int, int, torch.Tensor | None] | None = None
        self.jitter = ColorJitter.from_config(self.cfg.color_jitter)
        self._micro = 0

    # -- helpers for paradigms ------------------------------------------------------------
    @property
    def size(self) -> tuple[int, int] | None:
        """``(height, width)`` of training images, or None for native size."""
        if self.cfg.height:
            return (self.cfg.height, self.cfg.width or self.cfg.height)
        return self.ctx.preprocess.train_size

    def train_batch(self, images: ImageTensors, indices: Sequence[int]) -> torch.Tensor:
        """``images[indices]`` for training, jittered per image (key: seed, step, micro, index)."""
        return images.batch(indices, self.jitter, (self.ctx.seed, self.step, self._micro))

    def forward(
        self, images: torch.Tensor, *, module: torch.nn.Module | None = None, **kwargs: Any
    ) -> torch.Tensor:
        """Descriptors of a training batch, under autocast when AMP is on.

        Args:
            images: ``[B, 3, H, W]`` preprocessed images (moved to the device here).
            module: Run this module instead of the (DDP-wrapped) model being trained, e.g. a
                frozen teacher.
            **kwargs: Passed to the model's forward (``regions=True`` for region descriptors).
        """
        images = images.to(self.device, non_blocking=True)
        autocast = (
            torch.autocast(self.device.type, dtype=self.amp_dtype)
            if self.amp_dtype is not None
            else nullcontext()
        )
        with autocast:
            out: torch.Tensor = (module if module is not None else self.ddp_model)(images, **kwargs)
        return out.float()

    def reset_optimizer(self) -> None:
        """A fresh optimiser and schedule over the model's parameters (a new generation)."""
        self.optimizer = build_optimizer(self.model.parameters(), self.cfg)
        self.scheduler = build_scheduler(self.optimizer, self.cfg)

    def shard(self, rows: torch.Tensor) -> torch.Tensor:
        """This rank's share of a global batch (padded by repetition to a multiple of W)."""
        world = self.info.world_size
        if world == 1:
            return rows
        if len(rows) % world:
            pad = world - len(rows) % world
            rows = torch.cat([rows, rows[torch.arange(pad) % len(rows)]])
        return rows[self.info.rank :: world]

    # -- the loop --------------------------------------------------------------------------
    def run(self, paradigm: Paradigm) -> TrainOutcome:
        """Train to the end (or early stop) and return the outcome."""
        epoch, round_idx, pos, plan = 0, 0, 0, None
        if self.ctx.resume:
            epoch, round_idx, pos, plan = self._restore(paradigm)
        self._emit(
            "run-started",
            {
                "run_dir": str(self.ctx.run_dir),
                "resumed": self.ctx.resume,
                "epoch": epoch,
                "step": self.step,
                "method": self.ctx.method,
                "world_size": self.info.world_size,
            },
        )
        self.model.train()
        self._safe = (epoch, round_idx, pos, plan)
        total_epochs = getattr(paradigm, "total_epochs", None)
        n_epochs = int(total_epochs()) if callable(total_epochs) else self.cfg.epochs
        begin_epoch = getattr(paradigm, "begin_epoch", None)
        try:
            while epoch < n_epochs:
                losses = self._epoch_losses
                self.epoch = epoch
                if callable(begin_epoch) and round_idx == 0 and pos == 0 and plan is None:
                    begin_epoch(self, epoch)
                n_rounds = paradigm.rounds(epoch)
                bar = self._epoch_bar(epoch, n_epochs)
                while round_idx < n_rounds:
                    if plan is None:
                        plan, pos = paradigm.make_plan(self, epoch, round_idx), 0
                        self._safe = (epoch, round_idx, 0, plan)
                    while pos < len(plan):
                        pos, loss = self._optimizer_step(paradigm, plan, pos)
                        bar.update(1)
                        self._safe = (epoch, round_idx, pos, plan)
                        if loss is not None:
                            losses.append(loss)
                        if (
                            self.cfg.checkpoint_every_steps
                            and self.step % self.cfg.checkpoint_every_steps == 0
                        ):
                            self._save("last", paradigm, epoch, round_idx, pos, plan)
                    plan, round_idx = None, round_idx + 1
                    self._safe = (epoch, round_idx, 0, None)
                bar.close()
                info = getattr(paradigm, "epoch_info", None)
                stop = self._end_epoch(epoch, losses, info(epoch) if callable(info) else None)
                self._epoch_losses = []
                epoch, round_idx, pos = epoch + 1, 0, 0
                self._safe = (epoch, 0, 0, None)
                self._save("last", paradigm, epoch, 0, 0, None)
                if stop:
                    break
        except KeyboardInterrupt:
            if self._safe is not None:
                self._save("last", paradigm, *self._safe)
            self._emit("run-failed", {"error": "interrupted (Ctrl-C)", "step": self.step})
            raise TrainingInterruptedError(
                f"Interrupted; checkpoint saved. Resume with --resume {self.ctx.run_dir}"
            ) from None
        except Exception as exc:
            self._emit("run-failed", {"error": f"{type(exc).__name__}: {exc}", "step": self.step})
            raise
        last_epoch = int(self.history[-1]["epoch"]) if self.history else 0
        final = self._save_weights("final", {"epoch": last_epoch})
        best = self.ckpt_dir / "best.pt" if (self.ckpt_dir / "best.pt").exists() else None
        outcome = TrainOutcome(
            self.ctx.run_dir,
            best,
            final,
            dict(self.best),
            list(self.history),
            dict(self.ctx.config_dict),
        )
        self._emit(
            "run-finished",
            {
                "best_val": outcome.best_val,
                "final_checkpoint": str(final),
                "steps": self.step,
                "skipped_steps": self.skipped,
            },
        )
        return outcome

    def _epoch_bar(self, epoch: int, n_epochs: int) -> Any:
        """A step counter for the epoch: a bar on rank 0's terminal, silent otherwise.

        Without a terminal the ``epoch N`` line of the run's log reports each epoch.
        """
        import sys

        from vpr_bench.progress import progress

        show = self.info.is_main and sys.stderr.isatty()
        return progress(None, f"epoch {epoch + 1}/{n_epochs}", "step", enabled=show, leave=False)

    def _optimizer_step(
        self, paradigm: Paradigm, plan: torch.Tensor, pos: int
    ) -> tuple[int, float | None]:
        micro: list[torch.Tensor] = []
        for _ in range(self.cfg.accum_steps):
            rows = plan[pos : pos + self.batch_rows]
            if len(rows) == 0:
                break
            micro.append(rows)
            pos += len(rows)
        self.optimizer.zero_grad(set_to_none=True)
        sizes = [len(rows) for rows in micro]
        # Each micro-batch's mean loss is weighted by its share of the step's rows, so the step
        # follows the mean over all its rows (a short last micro-batch counts for its rows).
        equal = len(set(sizes)) == 1
        total = 0.0
        finite = True
        for i, rows in enumerate(micro):
            last = i == len(micro) - 1 or not self.info.enabled
            sync: Any = nullcontext() if last else self.ddp_model.no_sync()  # type: ignore[operator]
            with sync:
                self._micro = i
                loss = paradigm.loss(self, self.shard(rows))
                loss = loss / len(micro) if equal else loss * (sizes[i] / sum(sizes))
                if not torch.isfinite(loss.detach()):
                    finite = False
                self.scaler.scale(loss).backward()
            total += float(loss.detach())
        finite = self._all_ranks(finite)
        if not finite:
            self.optimizer.zero_grad(set_to_none=True)
            self.skipped += 1
            self._bad_run += 1
            log.warning(
                "Non-finite loss at step %d: step skipped (%d in a row).", self.step, self._bad_run
            )
            if self._bad_run >= self.cfg.max_bad_steps:
                raise NonFiniteLossError(
                    f"{self._bad_run} consecutive steps gave a NaN/inf loss (last at step "
                    f"{self.step}); training diverged. Lower trainer.lr, set trainer.grad_clip, or "
                    "turn off trainer.amp."
                )
            return pos, None
        self._bad_run = 0
        if self.cfg.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.step += 1
        return pos, total

    def _all_ranks(self, flag: bool) -> bool:
        if not self.info.enabled:
            return flag
        value = torch.tensor([0.0 if flag else 1.0], device=self.device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item() == 0.0)

    def _end_epoch(
        self, epoch: int, losses: list[float], info: dict[str, Any] | None = None
    ) -> bool:
        lr = float(self.optimizer.param_groups[0]["lr"])
        record: dict[str, Any] = {
            "epoch": epoch + 1,
            **(info or {}),
            "step": self.step,
            "lr": lr,
            "skipped_steps": self.skipped,
            "loss": float(np.mean(losses)) if losses else math.nan,
        }
        stop = False
        val_due = self.cfg.val_every and (epoch + 1) % self.cfg.val_every == 0
        if self.ctx.val_splits and val_due:
            metrics, per_split = validate_splits(
                self.model,
                self.ctx.val_splits,
                self.ctx.preprocess,
                size=self.size,
                device=self.device,
                batch_size=self.cfg.extract_batch_size,
            )
            record["val"] = metrics
            if per_split:
                record["val_splits"] = per_split
            key = self.cfg.select_metric
            if key not in metrics:
                raise VprBenchError(
                    f"trainer.select_metric {key!r} is not one of {sorted(metrics)}."
                )
            if not self.best or metrics[key] > self.best[key]:
                self.best = dict(metrics)
                self.bad_epochs = 0
                self._save_weights("best", {"epoch": epoch + 1, "val": metrics})
            else:
                self.bad_epochs += 1
                stop = (
                    bool(self.cfg.early_stop_patience)
                    and self.bad_epochs >= self.cfg.early_stop_patience
                )
        if self.scheduler is not None:
            self.scheduler.step()
        self.history.append(record)
        self._emit("epoch-ended", {**record, "early_stop": stop})
        return stop

    # -- checkpoints -----------------------------------------------------------------------
    def _meta(self, epoch: int) -> dict[str, Any]:
        return {
            "method": self.ctx.method,
            "epoch": epoch,
            "step": self.step,
            "best_val": self.best,
            "config": dict(self.ctx.config_dict),
            "select_metric": self.cfg.select_metric,
        }

    def _save(
        self,
        name: str,
        paradigm: Paradigm,
        epoch: int,
        round_idx: int,
        pos: int,
        plan: torch.Tensor | None,
    ) -> None:
        if not self.info.is_main:
            return
        state = {
            "model": unwrap(self.ddp_model).state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else {},
            "scaler": self.scaler.state_dict(),
            "rng": train_state.capture_rng_state(),
            "paradigm": paradigm.state_dict(),
            "loop": {
                "epoch": epoch,
                "round": round_idx,
                "pos": pos,
                "step": self.step,
                "plan": plan if plan is not None else torch.empty(0, 0, dtype=torch.long),
                "has_plan": plan is not None,
                "bad_epochs": self.bad_epochs,
                "skipped": self.skipped,
                "best": dict(self.best),
                "history": _tensor_free(self.history),
                "epoch_losses": torch.tensor(self._epoch_losses, dtype=torch.float64),
            },
        }
        path = train_state.save_train_state(self.ckpt_dir / f"{name}.pt", state, self._meta(epoch))
        self._emit("checkpoint-saved", {"path": str(path), "epoch": epoch, "step": self.step})

    def _save_weights(self, name: str, extra: dict[str, Any] | None = None) -> Any:
        path = self.ckpt_dir / f"{name}.pt"
        if self.info.is_main:
            meta = {**self._meta(0), **(extra or {}), "kind": "weights"}
            train_state.save_train_state(path, {"model": unwrap(self.ddp_model).state_dict()}, meta)
            self._emit("checkpoint-saved", {"path": str(path), "step": self.step})
        return path

    def _restore(self, paradigm: Paradigm) -> tuple[int, int, int, torch.Tensor | None]:
        state, _meta = train_state.load_train_state(self.ckpt_dir / "last.pt")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state["scheduler"]:
            self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        train_state.restore_rng_state(state["rng"])
        paradigm.load_state_dict(state["paradigm"])
        loop = state["loop"]
        self.step, self.bad_epochs, self.skipped = loop["step"], loop["bad_epochs"], loop["skipped"]
        self.best, self.history = dict(loop["best"]), list(loop["history"])
        saved_losses = loop.get("epoch_losses")
        self._epoch_losses = [] if saved_losses is None else saved_losses.tolist()
        plan = loop["plan"] if loop["has_plan"] else None
        log.info("Resumed at epoch %d, step %d.", loop["epoch"], self.step)
        return int(loop["epoch"]), int(loop["round"]), int(loop["pos"]), plan

    def _emit(self, kind: str, payload: dict[str, Any]) -> None:
        if self.info.is_main:
            from datetime import UTC, datetime

            now = datetime.now(UTC).isoformat(timespec="seconds")
            self.ctx.emit(RunEvent(kind, self.ctx.run_id, payload, now))


def _tensor_free(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in h.items() if not isinstance(v, torch.Tensor)} for h in history]
