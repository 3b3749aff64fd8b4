"""vpr-bench hooks of the de-attention plugin: model ``deattention-netvlad``, loss ``stml``,
trainer ``deattention-mining`` and methods ``deattention``, ``deattention-only`` and
``netvlad-stml`` (methods.md Methods B, PART C and E).

Pure data: every heavy object is a lazy ``"pkg.mod:obj"`` target, so ``vpr-bench list`` does
not import torch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

from vpr_bench import (
    IMAGENET,
    BatchKind,
    Checkpoint,
    LossSpec,
    MethodSpec,
    ModelSpec,
    PaperResult,
    RemoteFile,
    ResizePolicy,
    TrainerSpec,
    hookimpl,
)
from vpr_bench_netvlad.plugin import QUICK_PROFILE as NETVLAD_QUICK

__all__ = [
    "DEATT_STML_PITTS30K",
    "STML_PITTS30K",
    "DEATT_PAPER_ROWS",
    "DEATT_ONLY_PAPER_ROWS",
    "PAPER_PROFILE",
    "PREPROCESS",
    "QUICK_PROFILE",
    "vpr_bench_losses",
    "vpr_bench_methods",
    "vpr_bench_models",
    "vpr_bench_trainers",
]

PREPROCESS = dataclasses.replace(
    IMAGENET, train_size=(480, 640), test_policy=ResizePolicy.hard(480, 640)
)
"""pytorch-NetVlad's input: every image resized to 640x480 (no crop), ImageNet mean/std
(DEATT dataloaders/pittsburgh.py:37-38, 98-103)."""

PAPER_PROFILE: dict[str, Any] = {
    "seed": 123,
    "train_dataset": "pitts30k-train",
    "val_dataset": "pitts30k-val",
    "pca_dim": None,
    "model.backbone": "vgg16",
    "model.num_clusters": 64,
    "model.train_layers": "conv3",
    "model.pretrained": "auto",
    "model.variant": "openibl",
    "model.init_images": 500,
    "model.init_per_image": 100,
    "model.init_iters": 100,
    "model.deattention": True,
    "model.se": True,
    "model.deatt_categories": ("human", "vehicle", "sky"),
    "loss.margin": 0.1,
    "loss.pn_margin": 1.4,
    "trainer.height": 480,
    "trainer.width": 640,
    "trainer.epochs": 30,
    "trainer.tuples_per_step": 4,
    "trainer.optimizer": "sgd",
    "trainer.lr": 1e-3,
    "trainer.momentum": 0.9,
    "trainer.weight_decay": 1e-3,
    "trainer.scheduler": "none",
    "trainer.cache_queries": 1000,
    "trainer.neg_num": 10,
    "trainer.neg_pool": 1000,
    "trainer.extract_batch_size": 24,
    "trainer.select_metric": "R@1",
    "trainer.early_stop_patience": 11,
    "trainer.teacher": "vainf-deeplabv3plus",
    "trainer.mask_weight": 0.1,
    "trainer.mining_descriptor": "plain",
    "trainer.mining_margin": 1.5,
    "trainer.deatt_centroids": True,
}
"""The final model's recipe (1run_train_our_deattention_with_sTML.sh:26-43, get_parser.py,
train_function.bash; methods.md C.4): VGG16 trained from conv3, NetVLAD-64, de-attention of
human, vehicle and sky, SE, sTML (0.1, 1.4), mining margin 1.5, de-attention centroids; SGD
1e-3, momentum 0.9, weight decay 1e-3, constant (the StepLR is never stepped); 30 epochs of 4
tuples with 10 of 1000 negatives, refresh per 1000 queries, pitts30k-val R@1 every epoch, early
stop after 11 without gain (the issue's number), seed 123, no jitter, no PCA."""

DEATT_ONLY_PROFILE: dict[str, Any] = {
    **{k: v for k, v in PAPER_PROFILE.items() if not k.startswith("loss.")},
    "model.se": False,
    "model.deatt_categories": ("human", "vehicle"),
    "loss.margin": 0.1,
    "trainer.mining_margin": 0.1,
}
"""Recipe 2 of the script: de-attention (human, vehicle), no SE, plain triplet loss with margin
0.1 (not square-rooted), mining margin 0.1, de-attention centroids."""

STML_PROFILE: dict[str, Any] = {
    **{k: v for k, v in PAPER_PROFILE.items() if not k.startswith("loss.")},
    "loss.margin": 0.1,
    "loss.pn_margin": 1.4,
    "model.deattention": False,
    "model.se": False,
    "trainer.deatt_centroids": False,
    "trainer.teacher": "",
}
"""Recipe 1: baseline + sTML (no de-attention, no SE, reference centroids, mining margin 1.5)."""

QUICK_PROFILE: dict[str, Any] = {
    **{k: v for k, v in NETVLAD_QUICK.items() if not k.startswith("loss.")},
    "model.deattention": True,
    "model.se": True,
    "model.deatt_categories": ("human", "vehicle", "sky"),
    "loss.margin": 0.1,
    "loss.pn_margin": 1.4,
    "trainer.scheduler": "none",
    "trainer.select_metric": "R@1",
    "trainer.teacher": "synthcity",
    "trainer.mask_weight": 0.1,
    "trainer.mining_descriptor": "plain",
    "trainer.mining_margin": 1.5,
    "trainer.deatt_centroids": True,
}
"""CPU-sized: the small synthetic city (prepared with ``--labels``) at its native 120x160, the
tiny trunk from scratch with 16 clusters (NetVLAD's quick profile), the renderer labels as
teacher, the paper's loss, margins and de-attention centroids."""

QUICK_DEATT_ONLY: dict[str, Any] = {
    **{k: v for k, v in QUICK_PROFILE.items() if not k.startswith("loss.")},
    "loss.margin": 0.1,
    "model.se": False,
    "model.deatt_categories": ("human", "vehicle"),
    "trainer.mining_margin": 0.1,
}
QUICK_STML: dict[str, Any] = {
    **{k: v for k, v in QUICK_PROFILE.items() if not k.startswith("loss.")},
    "loss.margin": 0.1,
    "loss.pn_margin": 1.4,
    "model.deattention": False,
    "model.se": False,
    "trainer.deatt_centroids": False,
    "trainer.teacher": "",
}

_README = "DEATT README (ccsmm78/deattention_with_stml_for_vpr @8636981), methods.md C.6"
_SPLIT = "split unstated; the baseline row matches pytorch-NetVlad's pitts30k-val, so val"
DEATT_PAPER_ROWS = (
    PaperResult(
        "pitts30k-val",
        {"R@1": 90.3, "R@5": 96.7},
        source=_README,
        variant=f"VGG16 + de-attention + SE + NetVLAD-64 + sTML ({_SPLIT})",
    ),
)
DEATT_ONLY_PAPER_ROWS = (
    PaperResult(
        "pitts30k-val",
        {"R@1": 89.3, "R@5": 96.6},
        source=_README,
        variant=f"VGG16 + de-attention + NetVLAD-64, triplet ({_SPLIT}; SE unstated)",
    ),
)


_RELEASE = RemoteFile(
    # README of the authors' repository: "weight_image_retrieval.tar.gz" on Google Drive. No
    # sha256 is published (records carry the file's own).
    "https://drive.google.com/file/d/1xYxgii_iZogGWtKqLTQF2XlCfYguj1CY"
)
_VGG: dict[str, Any] = {
    "model.backbone": "vgg16",
    "model.num_clusters": 64,
    "model.variant": "openibl",
    "pca_dim": None,
}
_LICENSE = "not stated in the authors' repository"
DEATT_STML_PITTS30K = Checkpoint(
    tag="deatt-stml-pitts30k",
    file=_RELEASE,
    trained_on="pitts30k-train",
    overrides={
        **_VGG,
        "model.deattention": True,
        "model.se": True,
        "model.deatt_categories": ("human", "vehicle", "sky"),
    },
    reported=DEATT_PAPER_ROWS,
    license=_LICENSE,
    filename="weight_image_retrieval.tar.gz",
    load="vpr_bench_deattention.checkpoint:load_deattention_weights",
)
"""The final model: ``pretrained/trained_pitts30k_vgg16_netvladpooling_sTML1.4_deatt0.1_
reclustering_senet/model_best.pth.tar`` in the release archive (the archive or that file)."""

STML_PITTS30K = Checkpoint(
    tag="stml-pitts30k",
    file=_RELEASE,
    trained_on="pitts30k-train",
    overrides={**_VGG, "model.deattention": False, "model.se": False},
    license=_LICENSE,
    filename="weight_image_retrieval.tar.gz",
    load="vpr_bench_deattention.checkpoint:load_deattention_weights",
)
"""Baseline + sTML: ``pretrained/trained_pitts30k_vgg16_netvladpooling_sTML1.4_m0.1``."""


@hookimpl
def vpr_bench_models() -> Iterator[ModelSpec]:
    """Register ``deattention-netvlad``."""
    yield ModelSpec(
        name="deattention-netvlad",
        build="vpr_bench_deattention.model:build_deattention_netvlad",
        config_cls="vpr_bench_deattention.config:DeAttentionConfig",
        preprocess=PREPROCESS,
        prepare="vpr_bench_deattention.prepare:prepare_deattention",
        summary="VGG16 conv5_3 -> semantic de-attention mask -> SE -> NetVLAD-64 (32768-d)",
    )


@hookimpl
def vpr_bench_losses() -> Iterator[LossSpec]:
    """Register ``stml``."""
    yield LossSpec(
        name="stml",
        build="vpr_bench_deattention.loss:STMLLoss",
        config_cls="vpr_bench_deattention.loss:STMLConfig",
        batch_kind=BatchKind.TUPLES,
        summary="sharpened triplet marginal loss: max(0, d(q,p)+m-d(q,n)+m_pn-d(p,n)), m 0.1, "
        "m_pn 1.4",
    )


@hookimpl
def vpr_bench_trainers() -> Iterator[TrainerSpec]:
    """Register ``deattention-mining``."""
    yield TrainerSpec(
        name="deattention-mining",
        fit="vpr_bench_deattention.trainer:fit",
        batch_kinds=(BatchKind.TUPLES,),
        config_cls="vpr_bench_deattention.trainer:DeAttentionMiningConfig",
        summary="harness tuple mining + violation filter + w*MSE mask loss from a teacher",
    )


@hookimpl
def vpr_bench_methods() -> Iterator[MethodSpec]:
    """Register ``deattention``, ``deattention-only`` and ``netvlad-stml``."""
    yield MethodSpec(
        name="deattention",
        model="deattention-netvlad",
        loss="stml",
        trainer="deattention-mining",
        train_dataset="pitts30k-train",
        profiles={"paper": PAPER_PROFILE, "quick": QUICK_PROFILE},
        paper=DEATT_PAPER_ROWS,
        checkpoints=(DEATT_STML_PITTS30K,),
        weights_loader="vpr_bench_deattention.checkpoint:load_deattention_weights",
        summary="semantic de-attention (human, vehicle, sky) + SE + NetVLAD, sTML (Choi 2023)",
    )
    yield MethodSpec(
        name="deattention-only",
        model="deattention-netvlad",
        loss="triplet",
        trainer="deattention-mining",
        train_dataset="pitts30k-train",
        profiles={"paper": DEATT_ONLY_PROFILE, "quick": QUICK_DEATT_ONLY},
        paper=DEATT_ONLY_PAPER_ROWS,
        weights_loader="vpr_bench_deattention.checkpoint:load_deattention_weights",
        summary="semantic de-attention (human, vehicle) + NetVLAD, triplet 0.1 (Choi 2023)",
    )
    yield MethodSpec(
        name="netvlad-stml",
        model="deattention-netvlad",
        loss="stml",
        trainer="deattention-mining",
        train_dataset="pitts30k-train",
        profiles={"paper": STML_PROFILE, "quick": QUICK_STML},
        checkpoints=(STML_PITTS30K,),
        weights_loader="vpr_bench_deattention.checkpoint:load_deattention_weights",
        summary="NetVLAD (trained from conv3) with the sharpened triplet marginal loss",
    )
