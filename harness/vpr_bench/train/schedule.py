"""Optimisers and learning-rate schedules from a trainer config.

The OpenIBL defaults are reproducible: SGD (lr 1e-3, momentum 0.9, weight decay 1e-3) with
StepLR(step_size=5, gamma=0.5) stepped once per epoch (methods.md Part A section 10).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from vpr_bench.errors import ConfigError

__all__ = ["build_optimizer", "build_scheduler"]

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULERS = ("step", "cosine", "none")


def build_optimizer(params: Iterable[torch.nn.Parameter], config: Any) -> torch.optim.Optimizer:
    """Build the optimiser named by ``config.optimizer``.

    Args:
        params: The trainable parameters.
        config: Has ``optimizer``, ``lr``, ``momentum``, ``weight_decay``.

    Raises:
        ConfigError: Unknown optimiser name or a non-positive learning rate.
    """
    name = str(config.optimizer).lower()
    if config.lr <= 0:
        raise ConfigError(f"trainer.lr must be positive, got {config.lr}.")
    trainable = [p for p in params if p.requires_grad]
    if name == "sgd":
        return torch.optim.SGD(
            trainable, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
    if name == "adam":
        return torch.optim.Adam(trainable, lr=config.lr, weight_decay=config.weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(trainable, lr=config.lr, weight_decay=config.weight_decay)
    raise ConfigError(
        f"trainer.optimizer = {config.optimizer!r} is not known; "
        f"use one of {', '.join(OPTIMIZERS)}."
    )


def build_scheduler(
    optimizer: torch.optim.Optimizer, config: Any
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """Build the per-epoch schedule named by ``config.scheduler`` (None for ``"none"``).

    Args:
        optimizer: The optimiser to schedule.
        config: Has ``scheduler``, ``step_size``, ``gamma``, ``epochs``.

    Raises:
        ConfigError: Unknown schedule name or bad step size.
    """
    name = str(config.scheduler).lower()
    if name == "none":
        return None
    if name == "step":
        if config.step_size < 1:
            raise ConfigError(f"trainer.step_size must be >= 1, got {config.step_size}.")
        return torch.optim.lr_scheduler.StepLR(
            optimizer, step_size=config.step_size, gamma=config.gamma
        )
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, config.epochs))
    raise ConfigError(
        f"trainer.scheduler = {config.scheduler!r} is not known; "
        f"use one of {', '.join(SCHEDULERS)}."
    )
