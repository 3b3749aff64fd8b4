"""Extraction sharded over ``torchrun`` ranks, gathered on rank 0.

Each rank extracts one contiguous slice of the images (no padded duplicates: slice sizes differ
by at most one), and rank 0 gathers the slices in rank order with ``torch.distributed`` (gloo
on CPU, NCCL on CUDA). A single process (no ``WORLD_SIZE`` or ``WORLD_SIZE=1``) needs no
launcher and never touches ``torch.distributed``. Launch::

    torchrun --nproc_per_node 4 -m vpr_bench eval netvlad --dataset pitts30k-test

Only rank 0 gets the descriptors (and goes on to search, metrics and records); the other
ranks get an empty ``[0, D]`` array.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vpr_bench.device import resolve_device, torchrun_int
from vpr_bench.errors import UsageError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from vpr_bench.eval.cache import DescriptorCache
    from vpr_bench.eval.extract import Extraction
    from vpr_bench.protocol import ResizePolicy
    from vpr_bench.specs import Preprocess

__all__ = [
    "extract_sharded",
    "is_main_process",
    "rank",
    "shard_range",
    "shutdown",
    "world_size",
]

log = logging.getLogger(__name__)


def world_size() -> int:
    """Number of processes (``WORLD_SIZE``, 1 without a launcher)."""
    return max(1, torchrun_int("WORLD_SIZE", 1))


def rank() -> int:
    """This process's rank (``RANK``, 0 without a launcher)."""
    return torchrun_int("RANK", 0)


def is_main_process() -> bool:
    """True on rank 0 (and always in a single process)."""
    return rank() == 0


def shard_range(n: int, rank: int, world: int) -> tuple[int, int]:
    """The contiguous slice ``[start, stop)`` of ``n`` items that ``rank`` of ``world`` owns.

    The first ``n % world`` ranks get one item more; slices never overlap and cover all items.
    """
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"rank {rank} is not in a world of {world} processes.")
    base, extra = divmod(n, world)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


def _ensure_group(device: torch.device) -> Any:
    import torch.distributed as dist

    if not dist.is_available():
        raise UsageError("This torch build has no torch.distributed; run in one process.")
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            import torch

            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend)
        log.info("process group up: rank %d of %d (%s)", rank(), world_size(), backend)
    return dist


def shutdown() -> None:
    """Tear the process group down if this module (or anyone) started one."""
    try:
        import torch.distributed as dist
    except ImportError:  # pragma: no cover
        return
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _comm_device(device: torch.device) -> torch.device:
    import torch

    return device if device.type == "cuda" else torch.device("cpu")


def _broadcast_flag(flag: bool, device: torch.device) -> bool:
    import torch

    dist = _ensure_group(device)
    tensor = torch.tensor([1 if flag else 0], dtype=torch.int64, device=_comm_device(device))
    dist.broadcast(tensor, src=0)
    return bool(tensor.item())


def _gather_rows(local: np.ndarray, n: int, world: int, device: torch.device) -> np.ndarray | None:
    """Gather every rank's contiguous slice on rank 0 (padded in transit, trimmed after)."""
    import torch

    dist = _ensure_group(device)
    comm = _comm_device(device)
    me = rank()
    longest = max(stop - start for start, stop in (shard_range(n, r, world) for r in range(world)))
    padded = torch.zeros((longest, local.shape[1]), dtype=torch.float32, device=comm)
    padded[: len(local)] = torch.from_numpy(np.ascontiguousarray(local)).to(comm)
    buffers = [torch.empty_like(padded) for _ in range(world)] if me == 0 else None
    dist.gather(padded, gather_list=buffers, dst=0)
    if buffers is None:
        return None
    parts = []
    for r, buffer in enumerate(buffers):
        start, stop = shard_range(n, r, world)
        parts.append(buffer[: stop - start].cpu().numpy())
    return np.concatenate(parts, axis=0)


def extract_sharded(
    model: nn.Module,
    paths: Sequence[Path],
    policy: ResizePolicy,
    preprocess: Preprocess,
    options: dict[str, Any],
    cache: DescriptorCache | None,
) -> Extraction:
    """Extract ``paths`` over all ranks; rank 0 gets all descriptors, the others ``[0, D]``.

    Args:
        model: The model (a replica on every rank).
        paths: All images, identical on every rank.
        policy: Resize policy.
        preprocess: The model's input convention.
        options: ``device``, ``batch_size``, ``num_workers``, ``precision``, ``desc`` as for
            :func:`vpr_bench.eval.extract.compute_descriptors`.
        cache: Rank 0 looks up and stores the full array here (None: no cache).

    Returns:
        An :class:`vpr_bench.eval.extract.Extraction`.
    """
    from vpr_bench.eval.extract import Extraction, _local_extract, descriptor_dim

    world, me = world_size(), rank()
    device = resolve_device(options["device"])
    options = {**options, "device": device, "desc": f"{options.get('desc', 'extract')} [rank {me}]"}
    dim = descriptor_dim(model)
    empty = np.zeros((0, dim), dtype=np.float32)
    key = ""
    if cache is not None:
        key = cache.key(paths, policy, preprocess, options["precision"])
        cached = cache.load(key, len(paths)) if me == 0 else None
        if _broadcast_flag(cached is not None, device):
            if cached is None:  # not rank 0: it writes nothing, so it needs no time
                return Extraction(empty, 0.0, 0.0, True)
            return Extraction.timed(cached, len(paths), cache.recorded_seconds(key), True)
    start_time = time.perf_counter()
    start, stop = shard_range(len(paths), me, world)
    local = _local_extract(model, list(paths[start:stop]), policy, preprocess, options)
    gathered = _gather_rows(local, len(paths), world, device)
    seconds = time.perf_counter() - start_time
    if gathered is None:
        return Extraction(empty, seconds, 0.0, False)
    if cache is not None:
        meta = cache.entry_meta(policy, preprocess, options["precision"], seconds)
        cache.store(key, gathered, meta)
    return Extraction.timed(gathered, len(paths), seconds, False)
