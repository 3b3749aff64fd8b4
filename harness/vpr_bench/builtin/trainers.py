"""Built-in trainers (filled by the issue that builds them)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from vpr_bench.hookspecs import hookimpl


@hookimpl
def vpr_bench_trainers() -> Iterator[Any]:
    """Register the built-in trainers."""
    yield from ()
