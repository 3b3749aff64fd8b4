"""What a ``domain-views`` loss declares and checks: :class:`ViewSource` and the shape check.

Shared by the in-batch losses (:mod:`.losses`) and the memory losses (:mod:`.memory_losses`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from vpr_bench.errors import ConfigError

__all__ = ["ViewSource", "check_positive", "check_views"]


@dataclass(frozen=True)
class ViewSource:
    """What one view of a ``domain-views`` batch shows.

    Attributes:
        image: ``"original"`` or ``"generated"`` (the item's translation into the other domain).
        augmentation: Which independent augmentation of that image (0, 1, ...).
        output: ``"proj"`` (the normalised projection g(f(x))) or ``"feature"`` (normalised f(x)).
        encoder: ``"query"`` (the model being trained) or ``"key"`` (MoCo's momentum copy, no
            gradient).
    """

    image: Literal["original", "generated"]
    augmentation: int
    output: Literal["proj", "feature"] = "proj"
    encoder: Literal["query", "key"] = "query"


def check_views(views: torch.Tensor, n_views: int, name: str) -> torch.Tensor:
    """Return ``views`` if it is ``[B, n_views, D]``, B >= 2; else raise naming the loss."""
    if views.ndim != 3 or views.shape[1] != n_views:
        raise ValueError(
            f"Loss {name} takes views [B, {n_views}, D], got {tuple(views.shape)}: the trainer "
            "must give it the views its view_sources list."
        )
    if views.shape[0] < 2:
        raise ValueError(f"Loss {name} needs at least 2 items per batch (in-batch negatives).")
    return views


def check_positive(value: float, what: str) -> None:
    """Raise a ConfigError naming ``what`` unless ``value > 0``."""
    if not value > 0:
        raise ConfigError(f"{what} must be > 0, got {value}.")
