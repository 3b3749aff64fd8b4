"""The extraction forward pass: precision checks, autocast, and batches that shrink on OOM.

:class:`AdaptiveForward` runs a model on a batch in chunks under the requested precision,
halving the chunk after a CUDA out-of-memory error, and L2-normalises every row in float32.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Any, Literal

from vpr_bench.errors import UsageError, VprBenchError

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["PRECISIONS", "AdaptiveForward", "Precision", "autocast", "check_precision"]

log = logging.getLogger("vpr_bench.eval.extract")

Precision = Literal["fp32", "bf16", "fp16"]
PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16")


def check_precision(precision: str, device: torch.device) -> None:
    """Reject unknown precisions and fp16 on CPU with a message that says what works."""
    if precision not in PRECISIONS:
        raise UsageError(f"Unknown precision {precision!r}: use one of {', '.join(PRECISIONS)}.")
    if precision == "fp16" and device.type != "cuda":
        raise UsageError(
            f"Precision fp16 needs a CUDA device (got {device}); use fp32 (protocol parity) or "
            "bf16 on CPU."
        )


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """A no-op for fp32, else torch.autocast to bf16 or fp16 on ``device``."""
    import torch

    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


class AdaptiveForward:
    """Runs the model on a batch in chunks; a CUDA out-of-memory error halves the chunk."""

    def __init__(self, model: nn.Module, device: torch.device, precision: str) -> None:
        self.model = model
        self.device = device
        self.precision = precision
        self.max_chunk: int | None = None
        self.domain: str | None = None

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        """L2-normalised float32 ``[B, D]`` descriptors of ``batch`` (in ``self.domain``)."""
        import torch
        import torch.nn.functional as F

        outputs: list[torch.Tensor] = []
        start = 0
        while start < batch.shape[0]:
            chunk = self.max_chunk or batch.shape[0]
            part = batch[start : start + chunk]
            try:
                with autocast(self.precision, self.device):
                    out = (
                        self.model(part)
                        if self.domain is None
                        else self.model(part, domain=self.domain)
                    )
            except torch.OutOfMemoryError:
                if chunk <= 1:
                    raise VprBenchError(
                        f"Out of memory on {self.device} even with one image per batch; use a "
                        "smaller resize policy, bf16 precision, or another device."
                    ) from None
                self.max_chunk = max(1, (chunk + 1) // 2)
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                log.warning("out of memory at batch %d; continuing with %d", chunk, self.max_chunk)
                continue
            if out.ndim != 2 or out.shape[0] != part.shape[0]:
                raise VprBenchError(
                    f"Model {type(self.model).__name__} returned shape {tuple(out.shape)} for a "
                    f"batch of {part.shape[0]}; a model must map [B,3,H,W] to [B,D]."
                )
            outputs.append(F.normalize(out.float(), dim=1))
            start += part.shape[0]
        return torch.cat(outputs)
