"""Helpers for tests that train in several local processes (``torch.distributed``, ``env://``).

A test spawns one process per rank (``torch.multiprocessing.spawn``) with a port from
:func:`free_port`; each process calls :func:`set_rank_env` before it trains, so that the
harness's own ``init_process_group("env://")`` finds its rank, the world size and the store.
"""

from __future__ import annotations

import os
import socket

__all__ = ["free_port", "set_rank_env"]


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
