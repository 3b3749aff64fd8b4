"""Load a built-in dataset's split the way the harness does: reader + the spec's protocol."""

from __future__ import annotations

import functools
from pathlib import Path

from vpr_bench.data.load import SplitTarget, load_split
from vpr_bench.data.split import GeoSplit
from vpr_bench.registry import Registries


@functools.cache
def _registries() -> Registries:
    from vpr_bench.plugins import PluginManager

    return PluginManager(autoload=False).registries()


def load_builtin(dataset: str, root: Path, split: str = "test") -> GeoSplit:
    spec = _registries().datasets.get(dataset)
    return load_split(SplitTarget(spec, split, Path(root), spec.protocol_for(split)))
