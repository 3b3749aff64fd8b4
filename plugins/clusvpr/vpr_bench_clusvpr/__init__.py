"""ClusVPR for vpr-bench: VGG16 + CWTNet blocks + grouped GeM-gated VLAD, SFRS-style training.

Public API (imported lazily, so loading the plugin does not import torch):

* :class:`vpr_bench_clusvpr.model.ClusVPRModel`, :func:`~.model.build_clusvpr`,
  :func:`~.model.normalise_vlad`
* :class:`vpr_bench_clusvpr.config.ClusVPRConfig`
* :class:`vpr_bench_clusvpr.aggregator.ClusVPR` (the aggregator), ``REGION_NAMES``,
  ``REGION_COUNT``, :func:`~.aggregator.region_sums`
* :class:`vpr_bench_clusvpr.cwt.CWTNet`, :func:`~.cwt.cluster_value_scale`
* :func:`vpr_bench_clusvpr.prepare.prepare_clusvpr` (the model's k-means ``prepare`` step)

The loss is the SFRS plugin's ``sfrs`` and the trainer the harness's ``region-generations``.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "ClusVPR": "aggregator",
    "REGION_COUNT": "aggregator",
    "REGION_NAMES": "aggregator",
    "region_sums": "aggregator",
    "ClusVPRConfig": "config",
    "CWTNet": "cwt",
    "cluster_value_scale": "cwt",
    "ClusVPRModel": "model",
    "build_clusvpr": "model",
    "normalise_vlad": "model",
    "prepare_clusvpr": "prepare",
}

__all__ = [*sorted(_EXPORTS), "__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
