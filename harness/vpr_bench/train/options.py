"""Options shared by every built-in trainer (optimiser, schedule, loop, checkpoints)."""

from __future__ import annotations

from dataclasses import dataclass

from vpr_bench.ranges import bounded

__all__ = ["LoopConfig"]


@dataclass
class LoopConfig:
    """Loop options common to the built-in trainers (``trainer.*`` keys).

    The defaults reproduce OpenIBL: SGD lr 1e-3, momentum 0.9, weight decay 1e-3,
    StepLR(5, 0.5), 5 epochs, validation every epoch, best model by R@5. The run seed is the
    experiment's top-level ``seed``.

    Attributes:
        epochs: Passes over the training queries.
        lr: Learning rate.
        optimizer: ``sgd``, ``adam`` or ``adamw``.
        momentum: SGD momentum.
        weight_decay: L2 weight decay.
        scheduler: ``step``, ``cosine`` or ``none`` (stepped once per epoch).
        step_size: StepLR period in epochs.
        gamma: StepLR factor.
        grad_clip: Clip the gradient norm to this value (0: off).
        amp: Mixed precision on CUDA (bf16 where supported, else fp16 with a grad scaler);
            ignored on CPU.
        accum_steps: Micro-batches accumulated per optimiser step.
        val_every: Validate every this many epochs (0: never).
        select_metric: Validation metric that picks the best checkpoint.
        early_stop_patience: Stop after this many validations without improvement (0: off).
        checkpoint_every_steps: Also checkpoint every this many optimiser steps (0: epoch ends
            only).
        max_bad_steps: Abort after this many consecutive non-finite losses.
        num_workers: Threads decoding images (0: in the main thread).
        height: Resize training and mining images to this height (0: the model's train size,
            else native).
        width: Resize width (0: as ``height``).
        extract_batch_size: Batch size of descriptor extraction (mining cache, validation).
        cache_images: Keep decoded images in memory (small training sets).
        color_jitter: ``(brightness, contrast, saturation, hue)`` of the colour jitter applied
            to every training image independently (torchvision ``ColorJitter`` ranges; never
            to mining or validation images). OpenIBL trains with ``(0.7, 0.7, 0.7, 0.5)``; the
            default ``(0, 0, 0, 0)`` is off, and the method profiles that follow OpenIBL set it.
        deterministic: Deterministic algorithms (slower on CUDA).
        sync_bn: Convert BatchNorm to SyncBatchNorm in multi-process runs.
    """

    epochs: int = bounded(5, ge=1)
    lr: float = bounded(1e-3, gt=0)
    optimizer: str = "sgd"
    momentum: float = bounded(0.9, ge=0, le=1)
    weight_decay: float = bounded(1e-3, ge=0)
    scheduler: str = "step"
    step_size: int = bounded(5, ge=1)
    gamma: float = bounded(0.5, gt=0)
    grad_clip: float = bounded(0.0, ge=0)
    amp: bool = False
    accum_steps: int = bounded(1, ge=1)
    val_every: int = bounded(1, ge=0)
    select_metric: str = "R@5"
    early_stop_patience: int = bounded(0, ge=0)
    checkpoint_every_steps: int = bounded(0, ge=0)
    max_bad_steps: int = bounded(5, ge=1)
    num_workers: int = bounded(0, ge=0)
    height: int = bounded(0, ge=0)
    width: int = bounded(0, ge=0)
    extract_batch_size: int = bounded(32, ge=1)
    cache_images: bool = False
    color_jitter: tuple[float, float, float, float] = bounded((0.0, 0.0, 0.0, 0.0), ge=0)
    deterministic: bool = False
    sync_bn: bool = False
