"""An isolated plugin manager: the built-ins plus the plugin modules under test, nothing else.

The developer's other installed plugins never leak into tests: entry points are not read.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from types import ModuleType

from vpr_bench.plugins import PluginManager

__all__ = ["isolated_manager"]


def isolated_manager(plugin_modules: Sequence[str | ModuleType] = ()) -> PluginManager:
    """Build a plugin manager holding the built-ins and ``plugin_modules`` only.

    Args:
        plugin_modules: Plugin modules or their import paths, e.g.
            ``("vpr_bench_netvlad.plugin",)``; list a plugin's dependencies before it.

    Returns:
        A :class:`~vpr_bench.plugins.PluginManager` that read no entry points.
    """
    extra = [
        (item, importlib.import_module(item)) if isinstance(item, str) else (item.__name__, item)
        for item in plugin_modules
    ]
    return PluginManager(allow=[], autoload=False, entry_points=[], extra=extra)
