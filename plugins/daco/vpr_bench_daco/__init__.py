"""DaCo for vpr-bench: domain-agnostic contrastive learning and its four baselines.

Public API (imported lazily, so loading the plugin does not import torch):

* :mod:`vpr_bench_daco.losses`: :class:`~.losses.DaCoLoss`, :class:`~.losses.SimCLRLoss`,
  :class:`~.losses.SimSiamLoss`, :class:`~.losses.MoCoLoss`, :class:`~.losses.NPIDLoss`,
  :func:`~.losses.nt_xent`, :class:`~.losses.ViewSource` and the losses' configs (MoCo and
  NPID are defined in :mod:`vpr_bench_daco.memory_losses`, the view checks in
  :mod:`vpr_bench_daco.views`).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "DaCoLoss": "losses",
    "DaCoLossConfig": "losses",
    "MoCoConfig": "losses",
    "MoCoLoss": "losses",
    "NPIDConfig": "losses",
    "NPIDLoss": "losses",
    "SimCLRConfig": "losses",
    "SimCLRLoss": "losses",
    "SimSiamConfig": "losses",
    "SimSiamLoss": "losses",
    "ViewSource": "losses",
    "nt_xent": "losses",
}

__all__ = [*sorted(_EXPORTS), "__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
