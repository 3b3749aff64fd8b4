"""Helpers shared by the side-by-side benchmarks: peak memory and the machine they ran on."""

from __future__ import annotations

import datetime as dt
import platform
from pathlib import Path


def peak_rss_bytes() -> int:
    """This process's peak resident memory (``VmHWM`` of ``/proc/self/status``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def cpu_name() -> str:
    """The CPU model from ``/proc/cpuinfo`` (else ``platform.processor()``)."""
    return next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        platform.processor(),
    )


def environment(threads: int) -> dict[str, str]:
    """Date, CPU, threads and the torch / numpy / Python versions of a benchmark run."""
    import numpy as np
    import torch

    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_name(),
        "threads": str(threads),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }
