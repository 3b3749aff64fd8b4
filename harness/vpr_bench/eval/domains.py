"""Domain labels of models and images, for models with one encoder per domain (DISAM).

A model declares domains with a ``domains`` attribute (reference first) and a forward taking
``domain=<label>``; an image's label is its ``domain``, else its ``condition`` (None: the
reference). :func:`domain_runs` groups images for one extraction pass per domain.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from vpr_bench.errors import UsageError

if TYPE_CHECKING:
    from torch import nn

__all__ = ["check_domains", "domain_runs", "image_domains", "model_domains"]


def model_domains(model: nn.Module) -> tuple[str, ...]:
    """The domain labels a model declares (its ``domains`` attribute), reference first, or ()."""
    value = getattr(model, "domains", None)
    if not value or isinstance(value, str):
        return ()
    return tuple(str(d) for d in value)


def image_domains(records: Sequence[Any]) -> tuple[str | None, ...]:
    """Each image's domain label: its ``domain``, else its ``condition`` (None: unknown)."""
    return tuple(
        r.domain if getattr(r, "domain", None) is not None else getattr(r, "condition", None)
        for r in records
    )


def check_domains(model: nn.Module, labels: Sequence[str | None]) -> None:
    """Refuse labels the model does not declare (None stands for the reference domain).

    Raises:
        UsageError: A label is not one of the model's domains; the message lists them.
    """
    known = model_domains(model)
    unknown = sorted({str(x) for x in labels if x is not None and str(x) not in known})
    if unknown:
        raise UsageError(
            f"Model {type(model).__name__} has no domain {', '.join(repr(u) for u in unknown)}; "
            f"its domains are {', '.join(known)} (the first is the reference): give the model "
            "the dataset's domain labels, or evaluate images of its domains."
        )


def domain_runs(labels: Sequence[str | None], reference: str) -> list[tuple[str, np.ndarray]]:
    """``(label, image indices)`` per domain, in order of first appearance (None: reference)."""
    runs: dict[str, list[int]] = {}
    for index, label in enumerate(labels):
        runs.setdefault(reference if label is None else str(label), []).append(index)
    return [(label, np.asarray(rows, dtype=np.int64)) for label, rows in runs.items()]
