"""NetVLAD for vpr-bench: VGG16 (or ResNet / tiny) + NetVLAD, OpenIBL-compatible.

Public API (imported lazily so that loading the plugin does not import torch):

* :class:`vpr_bench_netvlad.layer.NetVLAD`, :func:`vpr_bench_netvlad.layer.vlad_to_descriptor`
* :class:`vpr_bench_netvlad.model.NetVLADModel`, :func:`vpr_bench_netvlad.model.build_netvlad`
* :class:`vpr_bench_netvlad.config.NetVLADConfig`
* :func:`vpr_bench_netvlad.regions.region_vlads`, ``region_descriptors``, ``REGION_NAMES``,
  ``REGION_COUNT`` (SFRS's nine region descriptors)
* :func:`vpr_bench_netvlad.prepare.prepare_netvlad` (the model's k-means ``prepare`` step)
* :func:`vpr_bench_netvlad.centroids.compute_centroids`, ``save_centroids``, ``load_centroids``
* :func:`vpr_bench_netvlad.checkpoint.load_openibl_checkpoint`, ``LoadedCheckpoint``
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "NetVLAD": "layer",
    "vlad_to_descriptor": "layer",
    "NetVLADModel": "model",
    "build_netvlad": "model",
    "NetVLADConfig": "config",
    "REGION_COUNT": "regions",
    "REGION_NAMES": "regions",
    "region_descriptors": "regions",
    "region_vlads": "regions",
    "compute_centroids": "centroids",
    "save_centroids": "centroids",
    "load_centroids": "centroids",
    "prepare_netvlad": "prepare",
    "LoadedCheckpoint": "checkpoint",
    "load_openibl_checkpoint": "checkpoint",
}

__all__ = [*sorted(_EXPORTS), "__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
