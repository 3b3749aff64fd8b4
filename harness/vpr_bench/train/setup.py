"""Run set-up shared by the trainers: seeding, the rank's device, the AMP dtype."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from vpr_bench.errors import VprBenchError
from vpr_bench.train.distributed import DistInfo

__all__ = ["amp_dtype", "seed_everything", "training_device"]


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


def training_device(requested: str, info: DistInfo) -> torch.device:
    """The torch device of this rank (``cuda:<local rank>`` under torchrun)."""
    if requested.startswith("cuda"):
        if not torch.cuda.is_available():
            raise VprBenchError(f"Device {requested!r} was requested but CUDA is not available.")
        if info.enabled:
            return torch.device("cuda", info.local_rank)
    return torch.device(requested)


def amp_dtype(device: torch.device, amp: bool) -> torch.dtype | None:
    """bf16 where the GPU supports it, else fp16; None without AMP or on CPU."""
    if not amp or device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
