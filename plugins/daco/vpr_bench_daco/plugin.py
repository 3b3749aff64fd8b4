"""vpr-bench hooks of the DaCo plugin.

* Model ``daco``: a randomly initialised ResNet-50 (or ResNet-18, or the harness's tiny trunk),
  global average pooling, the L2-normalised pooled feature as descriptor; the projection head
  only trains.
* Losses ``daco``, ``simclr``, ``simsiam``, ``moco`` and ``npid`` (batch kind
  ``domain-views``), trainer ``daco-views``.
* Methods ``daco``, ``simclr``, ``simsiam``, ``moco`` and ``npid`` with profiles ``paper``
  (HEAD code: 10 000 iterations, final weights), ``paper-val-selected`` (selected on the val
  set, as DaCo's code does) and ``quick`` (CPU, synthcity).

Pure data: heavy objects are lazy ``"pkg.mod:obj"`` targets, so listing does not import torch.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from vpr_bench import (
    BatchKind,
    DatasetSpec,
    LossSpec,
    MethodSpec,
    ModelSpec,
    Preprocess,
    ResizePolicy,
    TrainerSpec,
    hookimpl,
)
from vpr_bench_daco.data import DACO_DATASETS
from vpr_bench_daco.paper import CHECKPOINTS, METHODS, paper_rows

__all__ = [
    "BATCH_SIZES",
    "PREPROCESS",
    "profiles",
    "vpr_bench_datasets",
    "vpr_bench_losses",
    "vpr_bench_methods",
    "vpr_bench_models",
    "vpr_bench_trainers",
]

PREPROCESS = Preprocess(
    mean=(0.0, 0.0, 0.0),
    std=(1.0, 1.0, 1.0),
    train_size=None,
    test_policy=ResizePolicy.shorter_side(256),
)
"""[0, 1] pixels: the model normalises them itself (``model.normalizer``, per dataset)."""

BATCH_SIZES = {"daco": 16, "simclr": 32, "simsiam": 32, "moco": 32, "npid": 64}
"""Items per batch (DaCo README "Benchmarks"; methods.md B.4)."""

_LOSS_OPTIONS: dict[str, dict[str, Any]] = {
    "daco": {"loss.temperature": 0.1, "loss.lamda": 0.8},
    "simclr": {"loss.temperature": 0.1},
    "simsiam": {},
    "moco": {"loss.temperature": 0.1, "loss.negs": 4096, "loss.momentum": 0.999},
    "npid": {"loss.temperature": 0.1, "loss.negs": 4096, "loss.momentum": 0.5},
}


def profiles(method: str) -> dict[str, dict[str, Any]]:
    """The ``paper``, ``paper-val-selected`` and ``quick`` profiles of ``method``."""
    dim = {"loss.dim": 2048} if method in ("moco", "npid") else {}
    paper: dict[str, Any] = {
        "seed": 1,
        "train_dataset": "daco-tokyo-train",
        "model.backbone": "resnet50",
        "model.hidden_dim": 512,
        "model.proj_dim": 2048,
        "model.normalizer": "tokyo",
        **_LOSS_OPTIONS[method],
        **dim,
        "trainer.items_per_batch": BATCH_SIZES[method],
        "trainer.iterations": 10000,
        "trainer.crop": 256,
        "trainer.optimizer": "adam",
        "trainer.lr": 1e-3,
        "trainer.weight_decay": 1e-6,
        "trainer.scheduler": "none",
        "trainer.val_every": 0,
        "trainer.num_workers": 8,
    }
    # DaCo keeps the epoch with the best mean of its three val R@1 (A->B, B->A, A<->B;
    # main.py:72-90, methods.md B.5): the harness averages select_metric over the listed splits.
    selected = {
        **paper,
        "val_dataset": "daco-tokyo-ab,daco-tokyo-ba,daco-tokyo-cross",
        "trainer.val_every": 1,
        "trainer.select_metric": "R@1",
    }
    quick_dim = {"loss.dim": 64, "loss.negs": 256} if method in ("moco", "npid") else {}
    quick: dict[str, Any] = {
        "seed": 1,
        "train_dataset": "synthcity-train",
        "model.backbone": "tiny",
        "model.tiny_width": 16,
        # InstanceNorm after the first conv, as NetVLAD's quick profile (chosen there on val):
        # night+dusk R@1 untrained 10.0 -> daco 23.0 with it, 8.5 -> 8.5 with BatchNorm (README).
        "model.tiny_stem_norm": "instance",
        "model.hidden_dim": 64,
        "model.proj_dim": 64,
        "model.normalizer": "synthcity",
        **_LOSS_OPTIONS[method],
        **quick_dim,
        "trainer.items_per_batch": 16 if method == "daco" else 32,
        # 40 epochs of synthcity-small's 600 items (1480 steps for daco), 64 x 80 crops (the
        # images' 3:4) of half to all of the image: 3.6 CPU-minutes for daco on one thread.
        "trainer.epochs": 40,
        "trainer.crop": 64,
        "trainer.crop_width": 80,
        "trainer.crop_scale": (0.5, 1.0),
        "trainer.val_every": 0,
        "trainer.cache_images": True,
    }
    return {"paper": paper, "paper-val-selected": selected, "quick": quick}


@hookimpl
def vpr_bench_datasets() -> Iterator[DatasetSpec]:
    """Register ``daco-tokyo``, ``daco-cityscapes``, ``daco-synthia`` and ``daco-synthcity``."""
    yield from DACO_DATASETS


@hookimpl
def vpr_bench_models() -> Iterator[ModelSpec]:
    """Register ``daco``."""
    yield ModelSpec(
        name="daco",
        build="vpr_bench_daco.model:build_daco",
        config_cls="vpr_bench_daco.config:DaCoConfig",
        preprocess=PREPROCESS,
        summary="DaCo: ResNet-50 from scratch + GAP, 2048-d (projection head for training only)",
    )


@hookimpl
def vpr_bench_losses() -> Iterator[LossSpec]:
    """Register ``daco``, ``simclr``, ``simsiam``, ``moco`` and ``npid``."""
    for name, cls, config, summary in (
        (
            "daco",
            "DaCoLoss",
            "DaCoLossConfig",
            "DaCo: NT-Xent within two views of an image and of its GAN translation, plus "
            "0.8 x NT-Xent across (views o1, o2, g1, g2)",
        ),
        (
            "simclr",
            "SimCLRLoss",
            "SimCLRConfig",
            "SimCLR NT-Xent on two views of the original (DaCo baseline)",
        ),
        (
            "simsiam",
            "SimSiamLoss",
            "SimSiamConfig",
            "SimSiam negative cosine, stop-gradient on the features (DaCo baseline)",
        ),
        (
            "moco",
            "MoCoLoss",
            "MoCoConfig",
            "MoCo InfoNCE with a momentum key encoder and a 4096-key queue (DaCo baseline)",
        ),
        (
            "npid",
            "NPIDLoss",
            "NPIDConfig",
            "NPID NCE against a memory bank of every item, 4096 negatives (DaCo baseline)",
        ),
    ):
        yield LossSpec(
            name=name,
            build=f"vpr_bench_daco.losses:{cls}",
            config_cls=f"vpr_bench_daco.losses:{config}",
            batch_kind=BatchKind.DOMAIN_VIEWS,
            summary=summary,
        )


@hookimpl
def vpr_bench_trainers() -> Iterator[TrainerSpec]:
    """Register ``daco-views``."""
    yield TrainerSpec(
        name="daco-views",
        fit="vpr_bench_daco.trainer:fit",
        batch_kinds=(BatchKind.DOMAIN_VIEWS,),
        config_cls="vpr_bench_daco.trainer:DaCoViewsConfig",
        summary="DaCo: independent augmented views of each item (an image and its "
        "translation), one forward per view batch; MoCo key encoder, NPID bank",
    )


_SUMMARIES = {
    "daco": "DaCo (APIN 2023): contrastive views of an image and its GAN translation",
    "simclr": "SimCLR baseline of DaCo (ResNet-50 from scratch)",
    "simsiam": "SimSiam baseline of DaCo (ResNet-50 from scratch)",
    "moco": "MoCo baseline of DaCo (ResNet-50 from scratch, queue 4096)",
    "npid": "NPID baseline of DaCo (ResNet-50 from scratch, memory bank)",
}


@hookimpl
def vpr_bench_methods() -> Iterator[MethodSpec]:
    """Register ``daco``, ``simclr``, ``simsiam``, ``moco`` and ``npid``."""
    for method in METHODS:
        yield MethodSpec(
            name=method,
            model="daco",
            loss=method,
            trainer="daco-views",
            train_dataset="daco-tokyo-train",
            profiles=profiles(method),
            paper=paper_rows(method),
            checkpoints=CHECKPOINTS[method],
            summary=_SUMMARIES[method],
            weights_loader="vpr_bench_daco.weights:load_daco_weights",
        )
