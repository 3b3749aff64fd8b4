"""Declared value ranges of numeric config options, checked once when a config is resolved.

A config dataclass declares the range of a numeric field next to its default::

    @dataclass
    class MyTrainerConfig:
        lr: float = bounded(1e-3, gt=0)
        epochs: int = bounded(5, ge=1)
        margin: float = field(default=0.1, metadata={"range": (0, None)})  # inclusive

:func:`check_ranges` walks a (nested) config and refuses the first value outside its range
with a :class:`~vpr_bench.errors.ConfigError` naming the dotted key, the value and the range.
NaN is refused everywhere; infinity unless a field says ``allow_inf=True``. ``None`` passes
(an optional option that is off). Tuples and lists are checked element by element.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from vpr_bench.errors import ConfigError

__all__ = ["Range", "bounded", "check_ranges", "declared_range"]


@dataclass(frozen=True)
class Range:
    """An interval of allowed numbers; a missing bound is unbounded on that side.

    Attributes:
        low: The lower bound, or None.
        high: The upper bound, or None.
        low_open: The lower bound itself is excluded (``> low``).
        high_open: The upper bound itself is excluded (``< high``).
        allow_inf: Infinity is a meaningful value (e.g. "no limit").
    """

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    allow_inf: bool = False

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies in the range (NaN never does)."""
        if math.isnan(value) or (math.isinf(value) and not self.allow_inf):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return not (
            self.high is not None and (value >= self.high if self.high_open else value > self.high)
        )

    def describe(self, integer: bool = False) -> str:
        """The range in words, e.g. ``a finite number > 0`` or ``an integer in [0, 1]``."""
        kind = "an integer" if integer else "a number" if self.allow_inf else "a finite number"
        if self.low is not None and self.high is not None:
            left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
            return f"{kind} in {left}{_num(self.low)}, {_num(self.high)}{right}"
        if self.low is not None:
            return f"{kind} {'>' if self.low_open else '>='} {_num(self.low)}"
        if self.high is not None:
            return f"{kind} {'<' if self.high_open else '<='} {_num(self.high)}"
        return kind


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def bounded(
    default: Any,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    allow_inf: bool = False,
) -> Any:
    """A dataclass field with ``default`` and a declared range (``ge``/``gt``, ``le``/``lt``).

    Args:
        default: The default value (a number, a tuple of numbers, or None).
        ge: Inclusive lower bound.
        gt: Exclusive lower bound.
        le: Inclusive upper bound.
        lt: Exclusive upper bound.
        allow_inf: Accept infinity (NaN is never accepted).

    Returns:
        A :func:`dataclasses.field` carrying the range in ``metadata["range"]``.
    """
    if (ge is not None and gt is not None) or (le is not None and lt is not None):
        raise TypeError("bounded() takes one of ge/gt and one of le/lt.")
    declared = Range(
        low=gt if gt is not None else ge,
        high=lt if lt is not None else le,
        low_open=gt is not None,
        high_open=lt is not None,
        allow_inf=allow_inf,
    )
    return dataclasses.field(default=default, metadata={"range": declared})


def declared_range(field: dataclasses.Field[Any]) -> Range | None:
    """The range a field declares: a :class:`Range`, or an inclusive ``(low, high)`` tuple."""
    declared = field.metadata.get("range")
    if declared is None or isinstance(declared, Range):
        return declared
    low, high = declared
    return Range(low=low, high=high)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_ranges(config: Any, prefix: str = "") -> None:
    """Check every numeric field of ``config`` (recursively) against its declared range.

    Fields without a declared range are still refused when they hold NaN or infinity.

    Args:
        config: A dataclass instance.
        prefix: Prepended to field names in messages (``"trainer."``).

    Raises:
        ConfigError: A value outside its range; the message names the key, the value, the range
            and how to set it.
    """
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        key = f"{prefix}{field.name}"
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            check_ranges(value, prefix=f"{key}.")
            continue
        declared = declared_range(field) or Range(high=None)
        items = value if isinstance(value, tuple | list) else (value,)
        for item in items:
            if _is_number(item) and not declared.contains(float(item)):
                shown = value if isinstance(value, tuple | list) else item
                raise ConfigError(
                    f"{key} = {_show(shown)} is out of range; expected "
                    f"{declared.describe(integer=isinstance(item, int))}. "
                    f"Set it with --set {key}=VALUE or in the --config file."
                )


def _show(value: Any) -> str:
    if isinstance(value, tuple | list):
        return ",".join(_show(v) for v in value)
    return repr(value) if not isinstance(value, float) else str(value)
