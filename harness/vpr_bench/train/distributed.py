"""Multi-process training with ``torchrun``: process groups, DDP wrapping, sharded gathers.

Launch with ``torchrun --nproc_per_node=N -m vpr_bench train ...``: NCCL on CUDA, gloo on CPU.
Every rank mines the same tuples from the same gathered descriptor cache (each rank extracts a
contiguous slice of the training images; the slices are all-gathered), takes its share of each
global batch, and DDP averages the gradients, so N processes with a global batch of B tuples
follow the single-process run with batch B. Only rank 0 logs, emits events and writes
checkpoints.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

__all__ = [
    "DistInfo",
    "barrier",
    "cleanup",
    "gather_sharded",
    "init_distributed",
    "unwrap",
    "wrap_model",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the job.

    Attributes:
        rank: Global rank (0 when not distributed).
        world_size: Number of processes (1 when not distributed).
        local_rank: Rank on this machine (selects the CUDA device).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        """True with more than one process."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True on rank 0 (the one that logs and writes checkpoints)."""
        return self.rank == 0


def init_distributed(device: str) -> DistInfo:
    """Join the process group described by torchrun's environment (``WORLD_SIZE`` > 1).

    Args:
        device: The requested device; ``cuda`` selects NCCL and ``cuda:<LOCAL_RANK>``, anything
            else gloo.

    Returns:
        This process's :class:`DistInfo` (single-process when ``WORLD_SIZE`` is unset or 1).
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo()
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", str(rank)))
    if not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend=backend, init_method="env://")
        log.info("Joined process group: rank %d of %d (%s)", rank, world_size, backend)
    return DistInfo(rank=rank, world_size=world_size, local_rank=local_rank)


def cleanup(info: DistInfo) -> None:
    """Leave the process group (no-op when not distributed)."""
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    """Wait for every rank (no-op when not distributed)."""
    if info.enabled:
        dist.barrier()


def wrap_model(
    model: nn.Module, info: DistInfo, *, sync_bn: bool, device: torch.device
) -> nn.Module:
    """Wrap ``model`` in DDP (with SyncBatchNorm when asked); return it unchanged otherwise."""
    if not info.enabled:
        return model
    if sync_bn:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    device_ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(
        model, device_ids=device_ids, find_unused_parameters=False
    )


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a DDP wrapper (or ``model`` itself)."""
    inner = getattr(model, "module", None)
    return inner if isinstance(model, nn.parallel.DistributedDataParallel) and inner else model


def gather_sharded(
    compute: Callable[[Sequence[int]], torch.Tensor], n_items: int, info: DistInfo
) -> torch.Tensor:
    """Compute rows ``0..n_items-1`` split over the ranks and all-gather them on every rank.

    Rank ``r`` computes the contiguous slice ``[r*s, (r+1)*s)`` with ``s = ceil(n/W)``; the last
    slice is padded with repeats of item 0 (harmless duplicates, dropped after the gather).

    Args:
        compute: Maps a list of item indices to a ``[len, D]`` tensor.
        n_items: Number of items.
        info: The process's place in the job.
    """
    if not info.enabled:
        return compute(list(range(n_items)))
    per_rank = -(-n_items // info.world_size)
    start = info.rank * per_rank
    indices = [i if i < n_items else 0 for i in range(start, start + per_rank)]
    local = compute(indices).contiguous()
    gathered = [torch.empty_like(local) for _ in range(info.world_size)]
    dist.all_gather(gathered, local)
    return torch.cat(gathered)[:n_items]
