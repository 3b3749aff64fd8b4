"""Plugins that other plugins need: read from the distributions' declared requirements.

``vpr-bench-sare`` requires ``vpr-bench-netvlad`` (its methods train the ``netvlad`` model), so
``--plugins sare`` must also load the ``netvlad`` plugin, for its components only. This module
finds, for an allow-list of entry-point plugins, every entry-point plugin whose distribution
one of theirs requires (transitively), from the installed metadata; nothing is imported.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Mapping, Sequence
from importlib import metadata

__all__ = ["normalize_dist", "plugin_dependencies", "required_dists"]

_NAME_RE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_EXTRA_RE = re.compile(r"\bextra\s*==")


def normalize_dist(name: str) -> str:
    """PEP 503 normal form of a distribution name (``Vpr_Bench.X`` -> ``vpr-bench-x``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def required_dists(dist: metadata.Distribution | None) -> list[str]:
    """The normalised names of what ``dist`` requires, leaving out optional extras."""
    if dist is None:
        return []
    names = []
    for requirement in dist.requires or ():
        requirement_text, _, marker = requirement.partition(";")
        if _EXTRA_RE.search(marker):
            continue  # only installed with an extra: not something the plugin always needs
        match = _NAME_RE.match(requirement_text)
        if match:
            names.append(normalize_dist(match.group(1)))
    return names


def _dist_of(ep: metadata.EntryPoint) -> metadata.Distribution | None:
    return getattr(ep, "dist", None)


def plugin_dependencies(
    wanted: Sequence[str], available: Mapping[str, metadata.EntryPoint]
) -> dict[str, str]:
    """Entry-point plugins the ``wanted`` ones need, each mapped to the plugin that needs it.

    Args:
        wanted: Entry-point names from the allow-list (names not in ``available`` are ignored:
            built-ins and unknown names are reported elsewhere).
        available: Every discovered entry point of group ``vpr_bench`` by name.

    Returns:
        ``{"netvlad": "sare"}``: plugin name -> the plugin whose distribution requires its
        distribution (the first found, breadth first). Plugins in ``wanted`` are never listed.
    """
    by_dist: dict[str, list[str]] = {}
    for name, ep in sorted(available.items()):
        dist = _dist_of(ep)
        if dist is not None:
            by_dist.setdefault(normalize_dist(str(dist.name)), []).append(name)
    found: dict[str, str] = {}
    queue = deque(name for name in wanted if name in available)
    seen = set(queue)
    while queue:
        name = queue.popleft()
        for required in required_dists(_dist_of(available[name])):
            for dependency in by_dist.get(required, ()):
                if dependency in seen:
                    continue
                seen.add(dependency)
                found[dependency] = name
                queue.append(dependency)
    return found
