"""Provenance of a result: versions, device, git commit, time, config hash and peak memory.

Everything here is cheap and never fails an evaluation: a version that cannot be found is
recorded as ``""`` (faiss not installed, no git checkout) rather than raising.
"""

from __future__ import annotations

import datetime as dt
import os
import resource
import shlex
import subprocess
import sys
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from vpr_bench.config import config_hash
from vpr_bench.records import Provenance

__all__ = [
    "collect_provenance",
    "config_hash",
    "describe_device",
    "distribution_versions",
    "faiss_version",
    "git_sha",
    "peak_gpu_mb",
    "peak_host_mb",
    "reset_peak_gpu",
    "utc_now",
]

_HARNESS_DIR = Path(__file__).resolve().parent


def utc_now() -> str:
    """The current UTC time as ISO-8601 with a ``Z`` suffix, to the second."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    return now.isoformat().replace("+00:00", "Z")


def git_sha(path: Path | None = None) -> str:
    """The commit SHA of the git checkout holding ``path`` (the harness by default), or ``""``.

    A checkout with uncommitted changes to tracked files gets a ``-dirty`` suffix.
    """
    where = Path(path) if path is not None else _HARNESS_DIR
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return f"{sha}-dirty" if sha and dirty else sha


def faiss_version() -> str:
    """The installed faiss version, or ``""`` when faiss is not installed."""
    for dist in ("faiss-cpu", "faiss-gpu", "faiss-gpu-cu12", "faiss-gpu-cu11", "faiss"):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return ""


def distribution_versions(distributions: Iterable[str]) -> dict[str, str]:
    """``{distribution: version}`` for installed distributions (``"?"`` when not found).

    The harness itself (``vpr-bench``) is left out: it has its own provenance field.
    """
    versions: dict[str, str] = {}
    for dist in sorted(set(distributions)):
        if not dist or dist == "vpr-bench" or dist.startswith("("):
            continue
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "?"
    return versions


def describe_device(device: Any) -> str:
    """A human description of a torch device: ``"cpu (16 cores)"`` or the GPU's name."""
    import torch

    dev = torch.device(device)
    if dev.type == "cuda" and torch.cuda.is_available():
        index = dev.index if dev.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        return f"{props.name} ({props.total_memory / 2**30:.0f} GiB)"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{dev.type} ({cores} cores, {torch.get_num_threads()} torch threads)"


def peak_host_mb() -> float:
    """Peak resident memory of this process in MiB (``VmHWM``, else ``ru_maxrss``)."""
    status = Path("/proc/self/status")
    try:
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return rss / (1024.0 * 1024.0) if sys.platform == "darwin" else rss / 1024.0


def reset_peak_gpu(device: Any) -> None:
    """Reset CUDA's peak-memory counter of ``device`` (no-op on CPU)."""
    import torch

    dev = torch.device(device)
    if dev.type == "cuda" and torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats(dev)


def peak_gpu_mb(device: Any) -> float:
    """Peak CUDA memory allocated on ``device`` since the last reset, in MiB (0 on CPU)."""
    import torch

    dev = torch.device(device)
    if dev.type == "cuda" and torch.cuda.is_available():
        return float(torch.cuda.max_memory_allocated(dev)) / 2**20
    return 0.0


def collect_provenance(
    *,
    device: Any,
    seed: int,
    config: Mapping[str, Any],
    plugin_versions: Mapping[str, str] | None = None,
    command: str | None = None,
    uses_faiss: bool = True,
) -> Provenance:
    """Collect the provenance of an evaluation run now.

    Args:
        device: The torch device the model ran on.
        seed: The run's seed.
        config: The fully resolved config (hashed into ``config_hash``).
        plugin_versions: ``{distribution: version}`` of the plugins involved.
        command: The command line; defaults to this process's ``sys.argv``.
        uses_faiss: Record faiss's version (False when the search did not use faiss).

    Returns:
        A :class:`vpr_bench.records.Provenance`.
    """
    import torch

    from vpr_bench import __version__

    return Provenance(
        vpr_bench_version=__version__,
        plugin_versions=dict(sorted((plugin_versions or {}).items())),
        torch_version=str(torch.__version__),
        cuda_version=str(torch.version.cuda or ""),
        faiss_version=faiss_version() if uses_faiss else "",
        device=describe_device(device),
        git_sha=git_sha(),
        time_utc=utc_now(),
        seed=int(seed),
        config_hash=config_hash(config),
        command=command if command is not None else shlex.join(sys.argv),
    )
