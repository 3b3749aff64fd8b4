"""SFRS for vpr-bench: the region-level loss of OpenIBL's SFRS trainer, on NetVLAD.

Public API: :class:`vpr_bench_sfrs.loss.SFRSLoss`, :class:`~.loss.SFRSConfig`,
:func:`~.loss.hard_negative_regions` and :func:`vpr_bench_sfrs.checkpoint.load_sfrs_weights`
(imported lazily, so loading the plugin does not import torch). The loss's options are the
``loss.*`` experiment keys; the model is the NetVLAD plugin's ``netvlad``.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "HARD_LOSSES": "loss",
    "SFRSConfig": "loss",
    "SFRSLoss": "loss",
    "hard_negative_regions": "loss",
    "load_sfrs_weights": "checkpoint",
}

__all__ = [*sorted(_EXPORTS), "__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
