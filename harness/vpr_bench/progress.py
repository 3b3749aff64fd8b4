"""Progress of long work: a tqdm bar on a terminal, one log line per finished phase otherwise.

Redirected to a file, a tqdm bar writes a carriage-return update per refresh, hundreds per bar
on one line of the log. Without a terminal, :func:`progress` therefore counts silently and logs
one INFO line when the phase ends: what, how many, how long, how fast.
"""

from __future__ import annotations

import logging
import sys
import time
from types import TracebackType
from typing import Any

__all__ = ["LineProgress", "progress"]

log = logging.getLogger(__name__)


class LineProgress:
    """Counts like a tqdm bar and logs ``"<desc>: <n> <unit> in <t> s (<rate> <unit>/s)"`` once.

    A phase that ends short of its total logs ``"<desc>: stopped after <n> of <total>"``.

    Args:
        total: Expected count (for the line; may be None).
        desc: What is being done.
        unit: The unit counted (``img``, ``B``, ``block``).
        silent: Count without logging anything.
        min_seconds: Phases shorter than this log nothing (a validation's kNN search is no
            news).
    """

    def __init__(
        self,
        total: int | None,
        desc: str,
        unit: str,
        *,
        silent: bool = False,
        min_seconds: float = 1.0,
    ) -> None:
        self.total = total
        self.desc = desc
        self.unit = unit
        self.silent = silent
        self.min_seconds = min_seconds
        self.n = 0
        self._start = time.perf_counter()
        self._closed = False

    def update(self, n: int = 1) -> None:
        """Count ``n`` more items."""
        self.n += n

    def set_postfix_str(self, text: str) -> None:
        """Accepted for tqdm compatibility; the line shows counts only."""
        del text

    def close(self) -> None:
        """Log the phase's line (once), unless silent or nothing was counted."""
        if self._closed:
            return
        self._closed = True
        if self.silent or self.n == 0:
            return
        seconds = time.perf_counter() - self._start
        if seconds < self.min_seconds:
            return
        if self.total is not None and self.n < self.total:
            log.info("%s: stopped after %d of %d %s", self.desc, self.n, self.total, self.unit)
            return
        count = _human(self.n) if self.unit == "B" else f"{self.n}"
        rate = self.n / seconds if seconds > 0 else float("inf")
        rate_text = _human(rate) if self.unit == "B" else f"{rate:.0f}"
        log.info(
            "%s: %s %s in %.1f s (%s %s/s)",
            self.desc,
            count,
            self.unit,
            seconds,
            rate_text,
            self.unit,
        )

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self._closed = True  # a failed phase reports its error, not a throughput


def _human(value: float) -> str:
    for prefix in ("", "k", "M", "G"):
        if abs(value) < 1000:
            return f"{value:.1f}{prefix}" if prefix else f"{value:.0f}"
        value /= 1000
    return f"{value:.1f}T"


def progress(
    total: int | None,
    desc: str,
    unit: str = "it",
    *,
    enabled: bool = True,
    min_seconds: float = 1.0,
    **tqdm_options: Any,
) -> Any:
    """A progress counter for one phase of work.

    Args:
        total: Expected count, or None when unknown.
        desc: What is being done (``extract synthcity-test database``).
        unit: The unit counted.
        enabled: False counts silently (callers that show nothing, e.g. tests).
        min_seconds: Without a terminal, phases shorter than this log nothing.
        **tqdm_options: Passed to tqdm on a terminal (``unit_scale``, ``leave``).

    Returns:
        A tqdm bar when stderr is a terminal, else a :class:`LineProgress`; both have
        ``update(n)``, ``close()`` and work as context managers.
    """
    if enabled and sys.stderr.isatty():
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, unit=unit, **tqdm_options)
    return LineProgress(total, desc, unit, silent=not enabled, min_seconds=min_seconds)
