"""SARE for vpr-bench: the SARE-ind and SARE-joint losses (OpenIBL baseline) on NetVLAD.

Public API: :class:`vpr_bench_sare.loss.SAREIndLoss`, :class:`~.loss.SAREJointLoss`,
:class:`~.loss.SAREConfig` and :func:`~.loss.sare_distances` (imported lazily, so loading the
plugin does not import torch). The methods' options are the harness's dotted experiment keys
(``model.*`` of the ``netvlad`` model, ``trainer.*`` of ``triplet-mining``).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "SAREConfig": "loss",
    "SAREIndLoss": "loss",
    "SAREJointLoss": "loss",
    "sare_distances": "loss",
}

__all__ = [*sorted(_EXPORTS), "__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
