"""The vpr-bench error family.

Every error carries a message that names the thing that was wrong, what was expected, and how to
fix it. The CLI prints ``str(error)`` on one line and exits with :attr:`VprBenchError.exit_code`
(2 for usage errors, 1 for failures); ``--debug`` shows the traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "ConfigError",
    "DataError",
    "IncompatibleError",
    "PluginConflictError",
    "PluginError",
    "RecordError",
    "UnknownNameError",
    "UsageError",
    "VprBenchError",
    "did_you_mean",
]


class VprBenchError(Exception):
    """Base class of every error vpr-bench raises on purpose.

    Attributes:
        exit_code: The process exit code the CLI uses for this error.
    """

    exit_code: int = 1


class UsageError(VprBenchError):
    """The user asked for something that cannot be done as asked (bad flag, bad value)."""

    exit_code = 2


class UnknownNameError(UsageError):
    """A name (plugin, model, dataset, config key, ...) that nothing provides.

    Args:
        kind: What was looked up, e.g. ``"method"``.
        name: The name as the user wrote it.
        known: Every valid name, used for the "Did you mean" suggestion.
        hint: Optional extra sentence on how to fix it.
    """

    def __init__(self, kind: str, name: str, known: Iterable[str], hint: str = "") -> None:
        self.kind = kind
        self.name = name
        self.known = sorted(set(known))
        message = f"Unknown {kind} {name!r}."
        suggestion = did_you_mean(name, self.known)
        if suggestion:
            message += f" Did you mean: {suggestion}?"
        elif self.known:
            shown = ", ".join(self.known[:12]) + (", ..." if len(self.known) > 12 else "")
            message += f" Known: {shown}."
        else:
            message += f" No {kind} is registered."
        if hint:
            message += f" {hint}"
        super().__init__(message)


class ConfigError(UsageError):
    """An experiment config file or ``--set`` override is invalid."""


class PluginError(VprBenchError):
    """A plugin could not be loaded or broke a contract of the hook specs."""


class PluginConflictError(PluginError):
    """Two distributions offer the same plugin or component name."""


class IncompatibleError(UsageError):
    """Components of a method that cannot work together (e.g. loss batch kind vs trainer)."""


class DataError(VprBenchError):
    """A dataset on disk is missing, incomplete or not in the expected format."""


class RecordError(VprBenchError):
    """A result record (JSON) is malformed, of an unknown schema, or has unknown keys."""


def did_you_mean(name: str, known: Iterable[str], n: int = 3) -> str:
    """Return ``"a, b"`` for the closest matches of ``name`` among ``known``, or ``""``.

    Args:
        name: The misspelt name.
        known: The valid names.
        n: At most this many suggestions.

    Returns:
        A comma-separated list of suggestions, empty when nothing is close.
    """
    lowered = {k.lower(): k for k in known}
    scored = sorted(
        ((difflib.SequenceMatcher(None, name.lower(), k).ratio(), k) for k in lowered),
        key=lambda item: (-item[0], item[1]),
    )
    if not scored or scored[0][0] < 0.6:
        return ""
    best = scored[0][0]
    close = [k for score, k in scored if score >= best - 0.04][:n]
    return ", ".join(lowered[k] for k in close)
