"""Option dataclass of the ``deattention-netvlad`` model, the ``model.*`` keys (no torch here).

NetVLAD's options (:class:`vpr_bench_netvlad.NetVLADConfig`) plus the de-attention switches and
the de-attended categories (methods.md Methods B, C.1).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vpr_bench import bounded
from vpr_bench.errors import ConfigError
from vpr_bench_netvlad.config import NetVLADConfig

__all__ = ["CATEGORIES", "DeAttentionConfig", "check_categories"]

CATEGORIES = ("flat", "construction", "object", "nature", "sky", "human", "vehicle")
"""The Cityscapes categories a mask can de-attend (DEATT networks/Segmentation.py:50-62)."""


def check_categories(categories: tuple[str, ...] | list[str], option: str) -> tuple[str, ...]:
    """Validate a category list; one-line :class:`ConfigError` listing the known ones."""
    unknown = [c for c in categories if c not in CATEGORIES]
    if unknown:
        raise ConfigError(
            f"{option} has unknown categor{'y' if len(unknown) == 1 else 'ies'} "
            f"{', '.join(map(repr, unknown))}; choose from: {', '.join(CATEGORIES)}."
        )
    return tuple(categories)


@dataclass
class DeAttentionConfig(NetVLADConfig):
    """Options of the de-attention NetVLAD model (NetVLAD's options plus those below).

    Attributes:
        deattention: Run the de-attention module (mask ``M``, ``F' = F * M``).
        se: Run the squeeze-excitation block after it.
        se_reduction: SE bottleneck ratio (C -> C / r -> C; 16 in the code).
        deatt_categories: Categories the teacher's target mask sets to 0 (training only); the
            final model uses human, vehicle, sky.
        train_layers: As NetVLAD's; the code trains from conv3 (Table 1 of the paper).
    """

    train_layers: str = "conv3"
    deattention: bool = True
    se: bool = True
    se_reduction: int = bounded(16, ge=1)
    deatt_categories: tuple[str, ...] = field(default=("human", "vehicle", "sky"))

    def __post_init__(self) -> None:
        super().__post_init__()
        self.deatt_categories = check_categories(
            list(self.deatt_categories), "model.deatt_categories"
        )
        if self.se_reduction < 1:
            raise ConfigError(
                f"model.se_reduction = {self.se_reduction} must be >= 1 (the code uses 16)."
            )
