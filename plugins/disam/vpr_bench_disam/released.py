"""``Checkpoint.load`` functions of DISAM's released models (one per model folder).

Each loads the encoders of one folder of the authors' archive at epoch 1200 (README test
commands: ``--name CMU_coarse|CMU_fine --which_epoch 1200``; RobotCar ``robotcar_coarse`` /
``robotcar_fine``) through :func:`vpr_bench_disam.checkpoint.load_released`.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from vpr_bench_disam.checkpoint import load_released, load_released_pair

if TYPE_CHECKING:
    from torch import nn

    from vpr_bench.weights import PcaWhitening

__all__ = [
    "RELEASED_EPOCH",
    "load_cmu",
    "load_cmu_coarse",
    "load_cmu_fine",
    "load_robotcar_coarse",
    "load_robotcar_fine",
]

RELEASED_EPOCH = 1200
"""The epoch of every released retrieval model (README: ``--which_epoch 1200``)."""


def load_cmu_coarse(path: str | os.PathLike[str], model: nn.Module) -> PcaWhitening | None:
    """Encoders of ``CMU_coarse`` (12 domains) from the archive or its extracted folder."""
    return load_released(path, model, "CMU_coarse", RELEASED_EPOCH)


def load_cmu(path: str | os.PathLike[str], model: nn.Module) -> PcaWhitening | None:
    """Both: ``CMU_coarse`` into ``model.coarse``, ``CMU_fine`` into ``model.fine``."""
    return load_released_pair(path, model, ("CMU_coarse", "CMU_fine"), RELEASED_EPOCH)


def load_cmu_fine(path: str | os.PathLike[str], model: nn.Module) -> PcaWhitening | None:
    """Encoders of ``CMU_fine`` (12 domains)."""
    return load_released(path, model, "CMU_fine", RELEASED_EPOCH)


def load_robotcar_coarse(path: str | os.PathLike[str], model: nn.Module) -> PcaWhitening | None:
    """Encoders of ``robotcar_coarse`` (10 domains)."""
    return load_released(path, model, "robotcar_coarse", RELEASED_EPOCH)


def load_robotcar_fine(path: str | os.PathLike[str], model: nn.Module) -> PcaWhitening | None:
    """Encoders of ``robotcar_fine`` (10 domains)."""
    return load_released(path, model, "robotcar_fine", RELEASED_EPOCH)
