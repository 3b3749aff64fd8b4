"""Semantic-guided de-attention + SE + NetVLAD with the sharpened triplet marginal loss.

Choi et al., Pattern Recognition 141 (2023) 109645; methods.md Methods B, PART C and E.

Public API (imported lazily so that loading the plugin does not import torch):

* :class:`vpr_bench_deattention.model.DeAttentionNetVLAD`, ``build_deattention_netvlad``
* :class:`vpr_bench_deattention.config.DeAttentionConfig`
* :class:`vpr_bench_deattention.modules.DeAttention`, ``SEAttention``
* :class:`vpr_bench_deattention.loss.STMLLoss`, ``STMLConfig``
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "DeAttentionNetVLAD": "model",
    "build_deattention_netvlad": "model",
    "DeAttentionConfig": "config",
    "DeAttention": "modules",
    "SEAttention": "modules",
    "STMLLoss": "loss",
    "STMLConfig": "loss",
}

__all__ = [*sorted(_EXPORTS), "__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
