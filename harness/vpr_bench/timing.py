"""Where a run's time goes: wall-clock seconds per phase, each second counted once.

The pipeline wraps its phases in :func:`phase` (``generate``, ``prepare``, ``train``,
``extract``, ``pca``, ``search``, ``write``). Phases nest (the prepare step runs inside
training, the PCA fit may run inside a released-weights evaluation); a second always counts
for the innermost open phase only, so the phases add up to at most the run's wall time and the
rest (reading splits, scoring, building models) is reported as ``other`` by
:func:`phase_table`. ``vpr-bench run`` resets the clock when it starts and prints the table when
it ends.

The clock is process-wide and meant for the main thread (where the pipeline runs); a phase
opened on another thread is not supported.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import ParamSpec, TypeVar

__all__ = ["PHASES", "PhaseClock", "clock", "phase", "phase_table", "timed"]

_P = ParamSpec("_P")
_R = TypeVar("_R")

PHASES = ("generate", "prepare", "train", "extract", "pca", "search", "write")
"""The phases, in the order the table lists them."""


@dataclass
class PhaseClock:
    """Accumulates exclusive wall time per phase (see the module docstring)."""

    seconds: dict[str, float] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    _open: list[list[object]] = field(default_factory=list)
    _started: float = field(default_factory=lambda: time.perf_counter())

    def reset(self) -> None:
        """Forget every phase and restart the run's wall clock."""
        self.seconds.clear()
        self.calls.clear()
        self._open.clear()
        self._started = time.perf_counter()

    def elapsed(self) -> float:
        """Seconds since the clock was created or last reset."""
        return time.perf_counter() - self._started

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Count the wall time of the ``with`` body for ``name`` (minus nested phases).

        Raises:
            ValueError: ``name`` is not one of :data:`PHASES`.
        """
        if name not in PHASES:
            raise ValueError(f"unknown phase {name!r}; expected one of {', '.join(PHASES)}")
        now = time.perf_counter()
        if self._open:
            outer = self._open[-1]
            self._add(str(outer[0]), now - float(outer[1]))  # type: ignore[arg-type]
        self._open.append([name, now])
        try:
            yield
        finally:
            now = time.perf_counter()
            _, start = self._open.pop()
            self._add(name, now - float(start))  # type: ignore[arg-type]
            self.calls[name] = self.calls.get(name, 0) + 1
            if self._open:
                self._open[-1][1] = now  # the outer phase resumes

    def _add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + max(seconds, 0.0)


clock = PhaseClock()
"""The process-wide clock the pipeline's phases report to."""


def phase(name: str) -> AbstractContextManager[None]:
    """The context manager timing phase ``name`` on the process-wide :data:`clock`.

    Example: ``with phase("search"): knn(...)``.
    """
    return clock.phase(name)


def timed(name: str) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """Decorator: every call of the function is phase ``name`` on :data:`clock`."""

    def decorate(function: Callable[_P, _R]) -> Callable[_P, _R]:
        @functools.wraps(function)
        def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            with clock.phase(name):
                return function(*args, **kwargs)

        return wrapper

    return decorate


def phase_table(source: PhaseClock, total_seconds: float) -> str:
    """A plain-text table: phase, seconds, share of ``total_seconds``, times entered.

    Phases never entered are left out; ``other`` is the wall time no phase claimed, and the last
    row is the total.
    """
    from tabulate import tabulate

    total = max(total_seconds, 1e-9)
    rows: list[list[object]] = []
    claimed = 0.0
    for name in PHASES:
        if name not in source.calls:
            continue
        seconds = source.seconds.get(name, 0.0)
        claimed += seconds
        share = f"{100.0 * seconds / total:.0f} %"
        rows.append([name, f"{seconds:.1f}", share, source.calls[name]])
    other = max(total_seconds - claimed, 0.0)
    rows.append(["other", f"{other:.1f}", f"{100.0 * other / total:.0f} %", ""])
    rows.append(["total", f"{total_seconds:.1f}", "100 %", ""])
    headers = ["phase", "seconds", "share", "times"]
    align = ("left", "right", "right", "right")
    return str(tabulate(rows, headers=headers, colalign=align, disable_numparse=True))
