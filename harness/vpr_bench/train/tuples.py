"""The ``triplet-mining`` trainer: OpenIBL's cache-refresh loop with hard-negative tuples.

Per epoch the usable queries (those with a positive within ``pos_radius_m``) are permuted with
a generator seeded by ``seed + epoch`` (OpenIBL: 43 + epoch with seed 43) and cut into chunks of
``cache_queries``. For each chunk the descriptors of all training images are extracted (eval
mode, no jitter; sharded over ranks), tuples are mined on the device
(:mod:`vpr_bench.train.mining`), and one pass over the chunk's tuples trains the model,
``tuples_per_step`` tuples per micro-batch (methods.md Part A, sections 1.6-1.8).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from vpr_bench.data.geo import utm_array
from vpr_bench.eval.domains import image_domains
from vpr_bench.ranges import bounded
from vpr_bench.train.context import TrainContext, TrainOutcome
from vpr_bench.train.distributed import gather_sharded, unwrap
from vpr_bench.train.images import ImageTensors, training_descriptors
from vpr_bench.train.loop import Engine
from vpr_bench.train.mining import TupleMiner, training_ground_truth
from vpr_bench.train.options import LoopConfig

__all__ = ["TripletMiningConfig", "TupleParadigm", "fit", "round_seed"]


@dataclass
class TripletMiningConfig(LoopConfig):
    """Options of the ``triplet-mining`` trainer (``trainer.*`` keys); see also LoopConfig.

    Attributes:
        cache_queries: Queries per descriptor-cache refresh (OpenIBL: 1000).
        neg_num: Negatives per tuple (10).
        neg_pool: Random pool of negatives per query and refresh (1000).
        pos_radius_m: Training positives lie within this radius (10 m).
        neg_radius_m: Negatives lie beyond this radius (25 m).
        tuples_per_step: Tuples per micro-batch over all ranks (OpenIBL: 4 GPUs x 1).
    """

    cache_queries: int = bounded(1000, ge=1)
    neg_num: int = bounded(10, ge=1)
    neg_pool: int = bounded(1000, ge=1)
    pos_radius_m: float = bounded(10.0, gt=0)
    neg_radius_m: float = bounded(25.0, gt=0)
    tuples_per_step: int = bounded(4, ge=1)


def round_seed(seed: int, epoch: int, round_idx: int) -> int:
    """A 63-bit seed for the negative pool of one refresh, stable across runs and ranks."""
    digest = hashlib.sha256(f"mining:{seed}:{epoch}:{round_idx}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


class TupleParadigm:
    """Plans of mined tuples ``[query, positive, negatives...]`` (kept-query / database ids)."""

    def __init__(self, ctx: TrainContext, engine: Engine) -> None:
        cfg: TripletMiningConfig = ctx.config
        split = ctx.train_split
        self.cfg = cfg
        self.seed = ctx.seed
        self.gt = training_ground_truth(
            utm_array(split.database), utm_array(split.queries), cfg.pos_radius_m, cfg.neg_radius_m
        )
        self.n_q = len(self.gt.query_ids)
        records = [split.queries[int(i)] for i in self.gt.query_ids] + list(split.database)
        self.images = ImageTensors(
            [r.path for r in records],
            ctx.preprocess,
            engine.size,
            cache=cfg.cache_images,
            workers=cfg.num_workers,
            domains=image_domains(records),
        )
        self.miner = TupleMiner(
            self.gt, neg_num=cfg.neg_num, neg_pool=cfg.neg_pool, device=engine.device
        )

    def rounds(self, epoch: int) -> int:
        """Number of cache refreshes in an epoch."""
        return -(-self.n_q // self.cfg.cache_queries)

    def _chunk(self, epoch: int, round_idx: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(self.seed + epoch)
        order = torch.randperm(self.n_q, generator=generator)
        size = self.cfg.cache_queries
        return order[round_idx * size : (round_idx + 1) * size]

    def make_plan(self, engine: Engine, epoch: int, round_idx: int) -> torch.Tensor:
        """Refresh the descriptor cache and mine the tuples of one chunk of queries."""
        chunk = self._chunk(epoch, round_idx)
        model = unwrap(engine.ddp_model)
        n_images = len(self.images)

        def compute(indices: Sequence[int]) -> torch.Tensor:
            return training_descriptors(
                model,
                self.images,
                list(indices),
                device=engine.device,
                batch_size=self.cfg.extract_batch_size,
            )

        desc = gather_sharded(compute, n_images, engine.info)
        q_desc, db_desc = desc[: self.n_q], desc[self.n_q :]
        return self.miner.mine(
            chunk, q_desc[chunk.to(desc.device)], db_desc, round_seed(self.seed, epoch, round_idx)
        )

    def loss(self, engine: Engine, rows: torch.Tensor) -> torch.Tensor:
        """Triplet-style loss of tuples ``rows`` ``[b, 2 + neg_num]``."""
        image_ids = rows.clone()
        image_ids[:, 1:] += self.n_q
        flat = image_ids.reshape(-1).tolist()
        desc = engine.forward(engine.train_batch(self.images, flat)).reshape(
            rows.shape[0], rows.shape[1], -1
        )
        loss: torch.Tensor = engine.loss_fn(desc[:, 0], desc[:, 1:2], desc[:, 2:])
        return loss

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The negative cache."""
        return self.miner.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore the negative cache."""
        self.miner.load_state_dict(state)


def fit(ctx: TrainContext) -> TrainOutcome:
    """Train ``ctx.model`` with mined tuples; the ``fit`` of the ``triplet-mining`` trainer."""
    engine = Engine(ctx, batch_rows=ctx.config.tuples_per_step)
    return engine.run(TupleParadigm(ctx, engine))
