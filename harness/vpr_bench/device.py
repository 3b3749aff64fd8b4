"""The one place a ``--device`` value becomes a torch device.

``auto`` picks CUDA when it is available, else the CPU; ``cuda`` without CUDA is refused at once
(before any data is read or any model is built), and under ``torchrun`` a bare ``cuda`` becomes
``cuda:<LOCAL_RANK>`` so that every rank uses its own GPU. Extraction, search, mining and the
training loop all resolve through :func:`resolve_device`, so they agree on the device.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from vpr_bench.errors import UsageError

if TYPE_CHECKING:
    import torch

__all__ = ["resolve_device", "torchrun_int"]


def torchrun_int(name: str, default: int) -> int:
    """An integer that torchrun sets (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``), or ``default``.

    Raises:
        UsageError: The variable is set but is not an integer.
    """
    raw = os.environ.get(name, "")
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise UsageError(
            f"Environment variable {name}={raw!r} is not an integer; torchrun sets it, so unset "
            "it when not running under torchrun."
        ) from None


def resolve_device(requested: str | torch.device | None = "auto") -> torch.device:
    """The torch device for ``requested`` (``auto``/None, ``cpu``, ``cuda``, ``cuda:N``).

    Args:
        requested: The ``--device`` text or a torch device.

    Returns:
        ``cuda`` when ``auto`` and CUDA is available, else ``cpu``; ``cuda:<LOCAL_RANK>`` for a
        bare ``cuda`` under torchrun; the requested device otherwise.

    Raises:
        UsageError: CUDA was asked for but is not available, or the text is not a device.
    """
    import torch

    if requested is None or requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    if isinstance(requested, str):
        text = requested.strip().lower()
        if text != "cpu" and not (text == "cuda" or text.startswith("cuda:")):
            raise UsageError(f"--device must be auto, cpu, cuda or cuda:N, not {requested!r}.")
        try:
            device = torch.device(text)
        except RuntimeError:
            raise UsageError(
                f"--device {requested!r} is not a device; use cuda:N, e.g. cuda:0."
            ) from None
    else:
        device = requested
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"--device {device}: CUDA is not available here; use --device cpu.")
        if device.index is None and torchrun_int("WORLD_SIZE", 1) > 1:
            return torch.device("cuda", torchrun_int("LOCAL_RANK", 0))
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UsageError(
                f"--device {device}: this machine has {torch.cuda.device_count()} GPU(s); "
                f"use cuda:0..cuda:{torch.cuda.device_count() - 1}."
            )
    return device
