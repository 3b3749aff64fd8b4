"""Run set-up shared by the trainers: seeding, seeded model builds, the AMP dtype."""

from __future__ import annotations

import os
import random
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from vpr_bench.registry import resolve

if TYPE_CHECKING:
    from torch import nn

    from vpr_bench.specs import ModelSpec

__all__ = ["amp_dtype", "build_model_seeded", "seed_everything"]


def seed_everything(seed: int, deterministic: bool) -> None:
    """Seed Python, NumPy and torch; optionally switch torch to deterministic algorithms."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


def build_model_seeded(model_spec: ModelSpec, model_config: Any, seed: int) -> nn.Module:
    """Build ``model_spec``'s model right after seeding Python, NumPy and torch with ``seed``.

    Every place a run builds a model (``run``, ``train``, ``eval``, ``--checkpoint``) goes
    through here, so a model that keeps PyTorch's default initialisation gets the same initial
    weights for the same run seed. Models that seed their own build inside a forked RNG (the
    built-in ones) are unaffected, and training seeds again when it starts.

    Args:
        model_spec: The model to build.
        model_config: Its resolved config dataclass (``ExperimentConfig.model``).
        seed: The run's seed (``ExperimentConfig.seed``).
    """
    seed_everything(seed, deterministic=False)
    model: nn.Module = resolve(model_spec.build)(model_config)
    return model


def amp_dtype(device: torch.device, amp: bool) -> torch.dtype | None:
    """bf16 where the GPU supports it, else fp16; None without AMP or on CPU."""
    if not amp or device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
