"""The strict key report: how a file's tensors differ from what a model expects.

:func:`compare_keys` turns two name -> tensor mappings into a :class:`KeyReport` (missing,
unexpected and shape-mismatched keys); :meth:`KeyReport.error` makes the one-line
:class:`~vpr_bench.errors.DataError` every strict loader raises, so a user sees the same
message whichever loader refused the file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from vpr_bench.errors import DataError

__all__ = ["KeyReport", "ShapeMismatch", "compare_keys"]

_SHOWN = 10


class ShapeMismatch(NamedTuple):
    """A key both sides have, with different shapes."""

    key: str
    file_shape: tuple[int, ...]
    model_shape: tuple[int, ...]

    def __str__(self) -> str:
        return f"{self.key}: file {self.file_shape} vs model {self.model_shape}"


@dataclass(frozen=True)
class KeyReport:
    """What a weights file lacks, has too much of, or has in the wrong shape.

    Attributes:
        missing: Keys the model has and the file does not (sorted).
        unexpected: Keys the file has and the model does not (sorted).
        mismatched: Keys both have, with different shapes (sorted by key).
    """

    missing: tuple[str, ...] = ()
    unexpected: tuple[str, ...] = ()
    mismatched: tuple[ShapeMismatch, ...] = ()

    @property
    def ok(self) -> bool:
        """True when the file fits the model exactly."""
        return not (self.missing or self.unexpected or self.mismatched)

    @property
    def mismatched_names(self) -> frozenset[str]:
        """The keys of :attr:`mismatched`."""
        return frozenset(m.key for m in self.mismatched)

    def describe(self) -> str:
        """``missing keys: a, b | unexpected keys: c | shape mismatches: d: file (2,) vs ...``."""
        parts = []
        if self.missing:
            parts.append(f"missing keys: {_listing(self.missing)}")
        if self.unexpected:
            parts.append(f"unexpected keys: {_listing(self.unexpected)}")
        if self.mismatched:
            parts.append(f"shape mismatches: {_listing([str(m) for m in self.mismatched], '; ')}")
        return " | ".join(parts) if parts else "all keys match"

    def error(
        self,
        path: str | os.PathLike[str],
        model_name: str,
        hint: str = "Check that the file belongs to this model and its config.",
    ) -> DataError:
        """The error a strict loader raises for this report (raise it; it is not raised here).

        Args:
            path: The weights file.
            model_name: The model it was loaded into (class or registry name).
            hint: How to fix it.
        """
        return DataError(
            f"{path}: the weights do not fit model {model_name}: {self.describe()}. {hint}"
        )


def compare_keys(expected: Mapping[str, Any], found: Mapping[str, Any]) -> KeyReport:
    """Compare a model's state dict (``expected``) with a file's tensors (``found``).

    Values need a ``shape`` (tensors, arrays); keys are compared as given (strip prefixes and
    rename first).
    """
    missing = tuple(sorted(set(expected) - set(found)))
    unexpected = tuple(sorted(set(found) - set(expected)))
    mismatched = tuple(
        ShapeMismatch(key, tuple(found[key].shape), tuple(expected[key].shape))
        for key in sorted(set(expected) & set(found))
        if tuple(found[key].shape) != tuple(expected[key].shape)
    )
    return KeyReport(missing, unexpected, mismatched)


def _listing(items: Sequence[str], sep: str = ", ") -> str:
    shown = sep.join(items[:_SHOWN])
    return shown if len(items) <= _SHOWN else f"{shown}{sep}... (+{len(items) - _SHOWN} more)"
