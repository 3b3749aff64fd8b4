"""The SARE method's options: the NetVLAD recipe with a SARE loss instead of the triplet loss."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vpr_bench_netvlad.config import NetVLADMethodConfig

__all__ = ["SAREMethodConfig"]


@dataclass
class SAREMethodConfig(NetVLADMethodConfig):
    """Experiment options of ``sare`` / ``sare-joint``.

    Identical to :class:`NetVLADMethodConfig` (model, data, mining, optimiser, schedule and
    evaluation are the same in OpenIBL, methods.md section 3); ``margin`` is unused.
    """

    def loss_config(self) -> Any:
        """The SARE loss options (:class:`vpr_bench_sare.loss.SAREConfig`)."""
        from vpr_bench_sare.loss import SAREConfig

        return SAREConfig()
