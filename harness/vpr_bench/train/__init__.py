"""The public training API: what a trainer plugin builds on.

A trainer is a function ``fit(ctx: TrainContext) -> TrainOutcome`` registered with a
:class:`~vpr_bench.TrainerSpec` (see the ``vpr_bench_trainers`` hook for a complete example).
Most trainers describe *what* to train on and let the :class:`Engine` run the loop:

* :class:`TrainContext` / :class:`TrainOutcome`: what ``fit`` receives and returns (model, loss,
  the trainer's config, training and validation splits, device, seed, run folder, events).
* :class:`Paradigm`: the protocol a trainer implements (rounds per epoch, a plan of image
  indices per round, a loss over plan rows, optional tensor state to checkpoint), and
  :class:`EpochHooks`, its optional additions (run length, a hook at each epoch's start,
  extra history fields) with which :class:`RegionGenerationsParadigm` runs generations.
* :class:`Engine`: runs a paradigm: optimiser and schedule, AMP, accumulation, clipping, the
  non-finite-loss guard, validation and best checkpoint, early stopping, exact resumption, DDP.
* :class:`LoopConfig`: the loop's options (``trainer.*`` keys); subclass it for your own
  options. The built-in trainers' configs (:class:`TripletMiningConfig`,
  :class:`PlaceBatchesConfig`, :class:`DomainPairsConfig`, :class:`RegionGenerationsConfig`)
  are subclasses too.
* Data helpers: :class:`ImageTensors` (training images as normalised tensors, colour jitter
  keyed per image), :func:`training_descriptors` (descriptors for mining), :class:`TupleMiner`
  and :func:`training_ground_truth` (hard-negative mining), :func:`jaccard_distances` and
  :func:`select_difficult_positives` (SFRS's k-reciprocal re-ranking and difficult positives),
  :class:`ColorJitter`, :func:`gather_sharded` and :func:`unwrap` (DDP),
  :func:`seed_everything`.
* :class:`TupleParadigm` and :func:`round_seed`: the ``triplet-mining`` trainer's paradigm
  (cache refresh, mined tuples, triplet-style loss) for trainers that extend it.
* The built-in triplet loss (:class:`TripletLoss`, :class:`TripletConfig`) that tuple losses
  build on.
* Running a method: :func:`load_training_data` and :func:`train_method` (what
  ``vpr-bench train`` calls), :func:`prepare_model` (data-dependent initialisation).
* Resumable state for a trainer with its own loop (DISAM's GAN): :func:`save_train_state` /
  :func:`load_train_state` (tensor-only state file + JSON sidecar, atomic, weights-only
  loading) and :func:`capture_rng_state` / :func:`restore_rng_state` (every RNG).

Names are imported on first use, so ``import vpr_bench.train`` stays instant (no torch).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vpr_bench.builtin.triplet import TripletConfig, TripletLoss
    from vpr_bench.train.api import (
        TrainingData,
        load_training_data,
        prepare_model,
        resume_training,
        train_method,
    )
    from vpr_bench.train.augment import ColorJitter
    from vpr_bench.train.context import TrainContext, TrainOutcome
    from vpr_bench.train.distributed import gather_sharded, unwrap
    from vpr_bench.train.domain_pairs import DomainPairsConfig
    from vpr_bench.train.generations import RegionGenerationsConfig, RegionGenerationsParadigm
    from vpr_bench.train.images import ImageTensors, training_descriptors
    from vpr_bench.train.loop import (
        Engine,
        EpochHooks,
        NonFiniteLossError,
        Paradigm,
        TrainingInterruptedError,
    )
    from vpr_bench.train.mining import TrainingGroundTruth, TupleMiner, training_ground_truth
    from vpr_bench.train.options import LoopConfig
    from vpr_bench.train.places import PlaceBatchesConfig
    from vpr_bench.train.rerank import jaccard_distances, select_difficult_positives
    from vpr_bench.train.setup import seed_everything
    from vpr_bench.train.state import (
        capture_rng_state,
        load_train_state,
        restore_rng_state,
        save_train_state,
    )
    from vpr_bench.train.tuples import TripletMiningConfig, TupleParadigm, round_seed

_EXPORTS: dict[str, str] = {
    "TripletConfig": "vpr_bench.builtin.triplet",
    "TripletLoss": "vpr_bench.builtin.triplet",
    "TrainingData": "vpr_bench.train.api",
    "load_training_data": "vpr_bench.train.api",
    "prepare_model": "vpr_bench.train.api",
    "resume_training": "vpr_bench.train.api",
    "train_method": "vpr_bench.train.api",
    "ColorJitter": "vpr_bench.train.augment",
    "TrainContext": "vpr_bench.train.context",
    "TrainOutcome": "vpr_bench.train.context",
    "gather_sharded": "vpr_bench.train.distributed",
    "unwrap": "vpr_bench.train.distributed",
    "DomainPairsConfig": "vpr_bench.train.domain_pairs",
    "ImageTensors": "vpr_bench.train.images",
    "training_descriptors": "vpr_bench.train.images",
    "RegionGenerationsConfig": "vpr_bench.train.generations",
    "RegionGenerationsParadigm": "vpr_bench.train.generations",
    "Engine": "vpr_bench.train.loop",
    "EpochHooks": "vpr_bench.train.loop",
    "NonFiniteLossError": "vpr_bench.train.loop",
    "Paradigm": "vpr_bench.train.loop",
    "TrainingInterruptedError": "vpr_bench.train.loop",
    "TrainingGroundTruth": "vpr_bench.train.mining",
    "TupleMiner": "vpr_bench.train.mining",
    "training_ground_truth": "vpr_bench.train.mining",
    "LoopConfig": "vpr_bench.train.options",
    "PlaceBatchesConfig": "vpr_bench.train.places",
    "jaccard_distances": "vpr_bench.train.rerank",
    "select_difficult_positives": "vpr_bench.train.rerank",
    "seed_everything": "vpr_bench.train.setup",
    "TripletMiningConfig": "vpr_bench.train.tuples",
    "capture_rng_state": "vpr_bench.train.state",
    "load_train_state": "vpr_bench.train.state",
    "restore_rng_state": "vpr_bench.train.state",
    "save_train_state": "vpr_bench.train.state",
    "TupleParadigm": "vpr_bench.train.tuples",
    "round_seed": "vpr_bench.train.tuples",
}

__all__ = [
    "ColorJitter",
    "DomainPairsConfig",
    "Engine",
    "EpochHooks",
    "ImageTensors",
    "LoopConfig",
    "NonFiniteLossError",
    "Paradigm",
    "PlaceBatchesConfig",
    "RegionGenerationsConfig",
    "RegionGenerationsParadigm",
    "TrainContext",
    "TrainOutcome",
    "TrainingData",
    "TrainingGroundTruth",
    "TrainingInterruptedError",
    "TripletConfig",
    "TripletLoss",
    "TripletMiningConfig",
    "TupleMiner",
    "gather_sharded",
    "jaccard_distances",
    "load_training_data",
    "prepare_model",
    "resume_training",
    "seed_everything",
    "select_difficult_positives",
    "train_method",
    "training_descriptors",
    "training_ground_truth",
    "unwrap",
    "capture_rng_state",
    "load_train_state",
    "restore_rng_state",
    "save_train_state",
    "TupleParadigm",
    "round_seed",
]


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first use."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'vpr_bench.train' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
