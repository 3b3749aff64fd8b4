"""Helpers for tests that train in several local processes (``torch.distributed``, ``env://``).

A test spawns one process per rank (``torch.multiprocessing.spawn``) with a port from
:func:`free_port`; each process calls :func:`set_rank_env` before it trains, so that the
harness's own ``init_process_group("env://")`` finds its rank, the world size and the store.
:func:`train_on_rank` is the whole body of such a process for the common test: train, save
what the rank ended with, leave the process group.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vpr_bench.train.context import TrainContext, TrainOutcome

__all__ = ["free_port", "set_rank_env", "train_on_rank"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for the rank-0 store)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def set_rank_env(rank: int, world_size: int, port: int) -> None:
    """Set ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``."""
    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world_size),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )


def train_on_rank(
    rank: int,
    world_size: int,
    port: int,
    context: Callable[[], TrainContext],
    fit: Callable[[TrainContext], TrainOutcome],
    out_dir: Path,
) -> None:
    """Train one rank on one CPU thread and save ``history-<rank>.pt`` and ``model-<rank>.pt``.

    Both files go to ``out_dir`` (``torch.save``: the epoch history, the model's state dict) so
    the spawning test can compare the ranks. The ranks meet at a barrier before they leave,
    because rank 0 hosts the store and must go last.
    """
    import torch
    import torch.distributed as dist

    set_rank_env(rank, world_size, port)
    torch.set_num_threads(1)
    try:
        ctx = context()
        outcome = fit(ctx)
        torch.save(outcome.history, Path(out_dir) / f"history-{rank}.pt")
        torch.save(ctx.model.state_dict(), Path(out_dir) / f"model-{rank}.pt")
        dist.barrier()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
