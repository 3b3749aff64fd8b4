"""The ``domain-pairs`` trainer: batches of the same places rendered in two domains.

``ctx.pairs`` lists ``(image in domain A, same view in domain B)``; each epoch shuffles the
pairs (seeded by ``seed + epoch``) and the loss (batch kind ``domain-pairs``, e.g.
``domain-infonce``) receives ``a [B, D]`` and ``b [B, D]``, row i of each showing one place.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from vpr_bench.errors import DataError
from vpr_bench.ranges import bounded
from vpr_bench.train.context import TrainContext, TrainOutcome
from vpr_bench.train.images import ImageTensors
from vpr_bench.train.loop import Engine
from vpr_bench.train.options import LoopConfig

__all__ = ["DomainPairsConfig", "DomainPairParadigm", "fit"]


@dataclass
class DomainPairsConfig(LoopConfig):
    """Options of ``domain-pairs`` (``trainer.*``); see also LoopConfig.

    Attributes:
        pairs_per_batch: Pairs per micro-batch (over all ranks).
    """

    pairs_per_batch: int = bounded(16, ge=1)


class DomainPairParadigm:
    """Plans whose rows are ``[index of A image, index of B image]``."""

    def __init__(self, ctx: TrainContext, engine: Engine) -> None:
        if not ctx.pairs or len(ctx.pairs) < 2:
            raise DataError(
                "The domain-pairs trainer needs at least 2 cross-domain image pairs; the "
                "training dataset provided none (use a dataset that provides 'domain-pairs', "
                "e.g. synthcity)."
            )
        self.cfg: DomainPairsConfig = ctx.config
        self.seed = ctx.seed
        self.n = len(ctx.pairs)
        paths = [a.path for a, _ in ctx.pairs] + [b.path for _, b in ctx.pairs]
        self.images = ImageTensors(
            paths,
            ctx.preprocess,
            engine.size,
            cache=self.cfg.cache_images,
            workers=self.cfg.num_workers,
        )

    def rounds(self, epoch: int) -> int:
        """One plan per epoch."""
        return 1

    def make_plan(self, engine: Engine, epoch: int, round_idx: int) -> torch.Tensor:
        """Shuffled pairs."""
        order = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed + epoch))
        return torch.stack([order, order + self.n], dim=1)

    def loss(self, engine: Engine, rows: torch.Tensor) -> torch.Tensor:
        """The cross-domain loss of ``rows`` pairs."""
        desc = engine.forward(engine.train_batch(self.images, rows.reshape(-1).tolist()))
        desc = desc.reshape(rows.shape[0], 2, -1)
        loss: torch.Tensor = engine.loss_fn(desc[:, 0], desc[:, 1])
        return loss

    def state_dict(self) -> dict[str, torch.Tensor]:
        """No state beyond the loop's."""
        return {}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Nothing to restore."""


def fit(ctx: TrainContext) -> TrainOutcome:
    """Train on cross-domain pairs; the ``fit`` of the ``domain-pairs`` trainer."""
    engine = Engine(ctx, batch_rows=ctx.config.pairs_per_batch)
    return engine.run(DomainPairParadigm(ctx, engine))
