"""The ``region-generations`` trainer: SFRS's self-supervised generations on region tuples.

methods.md Part A, sections 4.2-4.5 (OpenIBL ``examples/netvlad_img_sfrs.py:177-231``); ClusVPR
trains the same way (section 5.5). The run is ``G = trainer.generations`` generations:

* generation 0 trains **one** epoch, its query order seeded as epoch ``E - 1`` (OpenIBL starts
  it at ``start_epoch = epochs - 1``); generations 1 .. G-1 train ``E = trainer.epochs`` epochs
  each, so the run has ``1 + (G - 1) E`` epochs;
* at the start of every generation g >= 1 the teacher becomes the student as it ended the
  previous generation (last epoch, not the best), the student is reset to its initial weights
  (the pretrained trunk plus the prepare step's k-means, kept in the run's state) when
  ``trainer.reinit_student`` is on, and a fresh optimiser and schedule start;
* every cache refresh mines tuples ``[query, easiest positive, neg_num hardest negatives,
  up to pos_num difficult positives]``: the ``pos_pool`` positives nearest in descriptor space,
  re-ranked by the k-reciprocal Jaccard distance of the current student's descriptors
  (:func:`~vpr_bench.train.rerank.jaccard_distances`), promoted ones first, demoted ones
  dropped (:func:`~vpr_bench.train.rerank.select_difficult_positives`); in generation 0 the
  plain distance stands in for the Jaccard one, so the difficult positives are the pos_num
  nearest;
* each step runs three forwards with region descriptors (``model(images, regions=True)``,
  through DDP): the student on ``[query, positive, negatives]`` and on ``[query, difficult
  positives]``, the teacher (no gradient, train mode as in OpenIBL) on the latter, and the loss
  receives a :class:`~vpr_bench.specs.BatchKind` ``region-tuples`` batch;
* the negative cache carries over between generations and the best checkpoint is chosen over
  all generations (``trainer.select_metric``, R@5 in OpenIBL).

Everything a generation needs (teacher, initial weights, negative cache) is in the paradigm's
checkpoint state, so a run resumes bit for bit in the middle of a generation or at its start.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from vpr_bench.errors import ConfigError
from vpr_bench.ranges import bounded
from vpr_bench.train.context import TrainContext, TrainOutcome
from vpr_bench.train.distributed import gather_sharded, unwrap
from vpr_bench.train.images import training_descriptors
from vpr_bench.train.loop import Engine
from vpr_bench.train.tuples import TripletMiningConfig, TupleParadigm, round_seed

if TYPE_CHECKING:
    from vpr_bench.experiment import ExperimentConfig

__all__ = ["RegionGenerationsConfig", "RegionGenerationsParadigm", "fit"]

log = logging.getLogger(__name__)


@dataclass
class RegionGenerationsConfig(TripletMiningConfig):
    """Options of the ``region-generations`` trainer (``trainer.*``); see TripletMiningConfig.

    ``epochs`` is the number of epochs of each generation after the first (generation 0 trains
    one epoch). OpenIBL's SFRS script: 4 generations of 5 epochs, pos_num 10, pos_pool 20.

    Attributes:
        generations: Generations G (SFRS: 4).
        pos_num: Difficult positives per tuple, at most (10).
        pos_pool: Nearest positives the difficult ones are chosen from (20).
        reinit_student: Reset the student to its initial weights at every generation (SFRS).
        rerank_k1: k1 of the k-reciprocal re-ranking (20).
        rerank_k2: k2, the query expansion of the re-ranking (1: none).
        rerank_lambda: Weight of the original distance in the re-ranked one (0.1).
    """

    generations: int = bounded(4, ge=1)
    pos_num: int = bounded(10, ge=1)
    pos_pool: int = bounded(20, ge=1)
    reinit_student: bool = True
    rerank_k1: int = bounded(20, ge=1)
    rerank_k2: int = bounded(1, ge=1)
    rerank_lambda: float = bounded(0.1, ge=0, le=1)

    def check(self, experiment: ExperimentConfig) -> None:
        """Refuse options that contradict each other (run when the config is resolved).

        Raises:
            ConfigError: ``pos_pool < pos_num``, or a loss with per-generation temperatures
                that has fewer than ``generations`` of them.
        """
        if self.pos_pool < self.pos_num:
            raise ConfigError(
                f"trainer.pos_pool = {self.pos_pool} is smaller than trainer.pos_num = "
                f"{self.pos_num}: the difficult positives are chosen among the pos_pool nearest "
                "positives. Set trainer.pos_pool >= trainer.pos_num."
            )
        temperatures = getattr(experiment.loss, "temperatures", None)
        if temperatures is not None and len(temperatures) < self.generations:
            raise ConfigError(
                f"loss.temperatures has {len(temperatures)} entries but trainer.generations = "
                f"{self.generations}: give one temperature per generation (SFRS: "
                "[0.07, 0.07, 0.06, 0.05]) or lower trainer.generations."
            )


class RegionGenerationsParadigm(TupleParadigm):
    """Tuples with difficult positives, trained in generations (see the module docstring)."""

    def __init__(self, ctx: TrainContext, engine: Engine) -> None:
        super().__init__(ctx, engine)
        cfg: RegionGenerationsConfig = ctx.config
        self.options = cfg
        check = getattr(engine.loss_fn, "check_generations", None)
        if callable(check):
            check(cfg.generations)
        model = unwrap(engine.ddp_model)
        self.initial = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self.teacher = copy.deepcopy(model)
        for parameter in self.teacher.parameters():
            parameter.requires_grad_(False)
        self.teacher.train()

    # -- schedule -------------------------------------------------------------------------
    def total_epochs(self) -> int:
        """``1 + (generations - 1) * epochs``."""
        return 1 + (self.options.generations - 1) * self.options.epochs

    def position(self, epoch: int) -> tuple[int, int]:
        """``(generation, epoch within it)`` of run epoch ``epoch`` (generation 0: ``E - 1``)."""
        if epoch == 0:
            return 0, self.options.epochs - 1
        return 1 + (epoch - 1) // self.options.epochs, (epoch - 1) % self.options.epochs

    def epoch_info(self, epoch: int) -> dict[str, Any]:
        """The generation of ``epoch``, for the history and events."""
        return {"generation": self.position(epoch)[0]}

    def begin_epoch(self, engine: Engine, epoch: int) -> None:
        """At a generation's first epoch: teacher <- student, re-init student, fresh optimiser."""
        generation, local = self.position(epoch)
        if generation == 0 or local != 0:
            return
        student = unwrap(engine.ddp_model)
        self.teacher.load_state_dict(student.state_dict())
        if self.options.reinit_student:
            student.load_state_dict(self.initial)
        engine.reset_optimizer()
        log.info(
            "Generation %d of %d: teacher = the student after generation %d%s.",
            generation,
            self.options.generations - 1,
            generation - 1,
            "; student reset to its initial weights" if self.options.reinit_student else "",
        )

    # -- plans ----------------------------------------------------------------------------
    def make_plan(self, engine: Engine, epoch: int, round_idx: int) -> torch.Tensor:
        """Refresh the cache; mine ``[query, positive, negatives.., difficult positives..]``.

        The difficult positives are padded with -1 when a query has fewer than pos_num.
        """
        from vpr_bench.train.rerank import jaccard_distances, select_difficult_positives

        generation, local = self.position(epoch)
        chunk = self._chunk(local, round_idx)
        model = unwrap(engine.ddp_model)

        def compute(indices: Sequence[int]) -> torch.Tensor:
            return training_descriptors(
                model,
                self.images,
                list(indices),
                device=engine.device,
                batch_size=self.options.extract_batch_size,
            )

        desc = gather_sharded(compute, len(self.images), engine.info)
        q_desc, db_desc = desc[: self.n_q], desc[self.n_q :]
        on_device = chunk.to(desc.device)
        tuples = self.miner.mine(
            chunk, q_desc[on_device], db_desc, round_seed(self.seed, epoch, round_idx)
        )
        positives = self.miner.positives[chunk].to(desc.device)
        valid = positives >= 0
        q = q_desc[on_device].float()
        pos_desc = db_desc.float()[positives.clamp(min=0)]  # [S, M, D]
        plain = (q[:, None, :] - pos_desc).pow(2).sum(-1).masked_fill(~valid, float("inf"))
        plain, order = torch.sort(plain, dim=1, stable=True)
        ranked = positives.gather(1, order)[:, : self.options.pos_pool]
        plain = plain[:, : self.options.pos_pool]
        if generation == 0:
            scores = plain
        else:
            jaccard = jaccard_distances(
                q_desc,
                db_desc,
                on_device,
                k1=self.options.rerank_k1,
                k2=self.options.rerank_k2,
                lambda_value=self.options.rerank_lambda,
            )
            scores = jaccard.gather(1, ranked.clamp(min=0))
        difficult = select_difficult_positives(ranked, scores, self.options.pos_num)
        return torch.cat([tuples, difficult.cpu()], dim=1)

    # -- loss -----------------------------------------------------------------------------
    def loss(self, engine: Engine, rows: torch.Tensor) -> torch.Tensor:
        """The region-tuples loss of plan ``rows`` (three forwards, see the module docstring)."""
        n_pairs = 1 + self.options.neg_num
        batch, width = rows.shape
        n_diff = width - 1 - n_pairs
        generation = self.position(engine.epoch)[0]
        easy_ids = rows[:, : 1 + n_pairs].clone()
        easy_ids[:, 1:] += self.n_q
        easy = engine.forward(
            engine.train_batch(self.images, easy_ids.reshape(-1).tolist()), regions=True
        )
        easy = easy.reshape(batch, 1 + n_pairs, *easy.shape[1:])
        anchors, pairs = easy[:, 0], easy[:, 1:]
        diff = rows[:, 1 + n_pairs :]
        mask = diff >= 0
        # [query, its valid difficult positives] per tuple, flattened; slots of a padded
        # [batch, 1 + n_diff] layout receive them.
        slots = torch.cat([torch.ones(batch, 1, dtype=torch.bool), mask], dim=1).reshape(-1)
        ids = torch.cat([rows[:, :1], diff + self.n_q], dim=1).reshape(-1)[slots]
        images = engine.train_batch(self.images, ids.tolist())
        student = engine.forward(images, regions=True)
        with torch.no_grad():
            teacher = engine.forward(images, module=self.teacher, regions=True)
        sim_diff = _anchor_similarities(student, slots, batch, n_diff)
        sim_teacher = _anchor_similarities(teacher, slots, batch, n_diff)
        value: torch.Tensor = engine.loss_fn(
            anchors, pairs, sim_diff, sim_teacher, mask.to(anchors.device), generation
        )
        return value

    # -- state ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, torch.Tensor]:
        """The negative cache, the teacher and the student's initial weights."""
        state = dict(self.miner.state_dict())
        state.update({f"teacher/{k}": v for k, v in self.teacher.state_dict().items()})
        state.update({f"initial/{k}": v for k, v in self.initial.items()})
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore :meth:`state_dict`."""
        self.miner.load_state_dict({"neg_cache": state["neg_cache"]})
        self.teacher.load_state_dict(_prefixed(state, "teacher/"))
        initial = _prefixed(state, "initial/")
        device = {k: v.device for k, v in self.initial.items()}
        self.initial = {k: v.to(device[k]) for k, v in initial.items()}


def _prefixed(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def _anchor_similarities(
    regions: torch.Tensor, slots: torch.Tensor, batch: int, n_diff: int
) -> torch.Tensor:
    """``[batch, n_diff, R, R]`` similarities of each query's regions with its positives'.

    ``regions`` holds ``[query, valid difficult positives]`` per tuple, in order; padded
    positives get zero similarities (the loss masks them).
    """
    n_regions, dim = regions.shape[1:]
    padded = regions.new_zeros(batch * (1 + n_diff), n_regions, dim)
    padded = padded.index_put((slots.nonzero().squeeze(1).to(regions.device),), regions)
    padded = padded.reshape(batch, 1 + n_diff, n_regions, dim)
    return torch.einsum("bal,bpcl->bpac", padded[:, 0], padded[:, 1:])


def fit(ctx: TrainContext) -> TrainOutcome:
    """Train ``ctx.model`` in generations; the ``fit`` of the ``region-generations`` trainer."""
    engine = Engine(ctx, batch_rows=ctx.config.tuples_per_step)
    return engine.run(RegionGenerationsParadigm(ctx, engine))
