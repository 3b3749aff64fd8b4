"""vpr-bench hooks of the ClusVPR plugin: model ``clusvpr`` and method ``clusvpr``.

The method trains the model with the SFRS plugin's loss ``sfrs`` and the harness's
``region-generations`` trainer, as ClusVPR's code (a fork of OpenIBL's SFRS trainer) does.
Pure data: heavy objects are lazy ``"pkg.mod:obj"`` targets, so listing does not import torch.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from vpr_bench import MethodSpec, ModelSpec, PaperResult, hookimpl
from vpr_bench_netvlad.plugin import PREPROCESS

__all__ = [
    "CLUSVPR_PAPER_ROWS",
    "PAPER_PROFILE",
    "PREPROCESS",
    "QUICK_PROFILE",
    "vpr_bench_methods",
    "vpr_bench_models",
]

PAPER_PROFILE: dict[str, Any] = {
    "seed": 43,
    "train_dataset": "pitts30k-train",
    "val_dataset": "pitts30k-val",
    "pca_dim": 4096,
    "pca_samples": 10000,
    "model.backbone": "vgg16",
    "model.pretrained": "auto",
    # train_clusvpr.py:100 builds the backbone without its --layers, so vgg.py's default
    # 'conv5' applies: conv5_1-5_3 and the aggregator train. The script's 'full' (everything)
    # is --set model.train_layers=full.
    "model.train_layers": "conv5",
    "model.num_clusters": 64,
    "model.expansion": 2,
    "model.groups": 8,
    "model.map_height": 30,
    "model.map_width": 40,
    "model.init_images": 500,
    "model.init_per_image": 100,
    "model.init_iters": 100,
    "loss.hard": "sare-ind",
    "loss.temperatures": (0.06, 0.06, 0.05, 0.04),
    "loss.soft_weight": 0.5,
    "trainer.height": 480,
    "trainer.width": 640,
    "trainer.generations": 4,
    "trainer.epochs": 5,
    "trainer.reinit_student": False,
    "trainer.neg_num": 1,
    "trainer.neg_pool": 1000,
    "trainer.pos_num": 1,
    "trainer.pos_pool": 20,
    "trainer.rerank_k1": 20,
    "trainer.rerank_k2": 1,
    "trainer.rerank_lambda": 0.1,
    "trainer.tuples_per_step": 4,
    "trainer.optimizer": "sgd",
    "trainer.lr": 1e-4,
    "trainer.momentum": 0.9,
    "trainer.weight_decay": 1e-3,
    "trainer.scheduler": "step",
    "trainer.step_size": 5,
    "trainer.gamma": 0.5,
    "trainer.cache_queries": 1000,
    "trainer.color_jitter": (0.7, 0.7, 0.7, 0.5),
    "trainer.sync_bn": True,
    "trainer.select_metric": "R@5",
}
"""ClusVPR's ``scripts/train_clusvpr.sh:22-29`` (methods.md 5.5): 4 GPUs x 1 tuple of [query,
easiest positive, 1 of 1000 negatives, 1 difficult positive out of 20], SGD lr 1e-4 (momentum
0.9, weight decay 1e-3), StepLR(5, 0.5) per generation, 4 generations (1 + 5 + 5 + 5 epochs)
without re-initialising the student, temperatures 0.06/0.06/0.05/0.04, soft weight 0.5,
SyncBatchNorm, OpenIBL's jitter, 1000-query caches, seed 43; torchvision's ImageNet VGG16 fed
MatConvNet-style input (methods.md C-8); model chosen by R@5, PCA-whitening to 4096."""

QUICK_PROFILE: dict[str, Any] = {
    "seed": 43,
    "train_dataset": "synthcity-train",
    "val_dataset": "synthcity-val",
    "pca_dim": None,
    "model.backbone": "tiny",
    "model.tiny_width": 16,
    "model.pretrained": None,
    "model.train_layers": "full",
    "model.num_clusters": 16,
    "model.expansion": 2,
    "model.groups": 4,
    # 96x128 images give the tiny trunk a 12x16 map: even (the CWT's 2x2 pooling) and cut
    # into 4x4 s-patches. synthcity's native 120x160 (15x20) evaluates through the resize path.
    "model.map_height": 12,
    "model.map_width": 16,
    "model.blocks": 4,
    "model.cwt_mlp_dim": 64,
    "model.cwt_heads": 2,
    "model.init_images": 100,
    "model.init_per_image": 50,
    "loss.hard": "sare-ind",
    "loss.temperatures": (0.06, 0.06),
    "loss.soft_weight": 0.5,
    "trainer.height": 96,
    "trainer.width": 128,
    # 2 generations of one epoch each; tuples as the paper's but with 2 negatives. The model
    # takes about 17 ms per image forward and backward at 96x128 on one CPU thread (measured),
    # so an epoch over synthcity-small's 1200 queries (6 student and 2 teacher images each) is
    # about 2.5 min. Measured (2026-11-30, synthcity-small v2, shared 2-core CPU): test R@1
    # 22.8 untrained -> 31.5 after the two generations; on v3, 22.5 -> 33.3 (README).
    "trainer.generations": 2,
    "trainer.epochs": 1,
    "trainer.reinit_student": False,
    "trainer.neg_num": 2,
    "trainer.neg_pool": 100,
    "trainer.pos_num": 1,
    "trainer.pos_pool": 8,
    "trainer.tuples_per_step": 4,
    "trainer.lr": 1e-3,
    "trainer.momentum": 0.9,
    "trainer.weight_decay": 1e-4,
    "trainer.cache_queries": 1200,
    "trainer.cache_images": True,
}
"""CPU-sized (synthcity): the tiny trunk from scratch, 4 narrow CWT blocks (token width 32, MLP
64), 16 clusters in 4 groups of 32 (512-d), 96x128 training images and 2 generations of one
epoch, so the teacher, the re-ranking and the soft region labels all run. Measured
on synthcity-small test: R@1 22.8 untrained, 31.5 trained (README)."""

_TABLE = "ClusVPR paper, Table I (figs/clusvpr_quantitative_results.png), methods.md 7.3"
_VARIANT = "ClusVPR, VGG16 + CWTNet + grouped VLAD, PCA-w 4096 (paper)"
CLUSVPR_PAPER_ROWS = (
    PaperResult("pitts30k-test", {"R@1": 90.8, "R@5": 95.2}, _TABLE, variant=_VARIANT),
    PaperResult("pitts250k-test", {"R@1": 92.4, "R@5": 96.9}, _TABLE, variant=_VARIANT),
    PaperResult(
        "tokyo247",
        {"R@1": 87.5, "R@5": 91.5},
        _TABLE,
        variant=f"{_VARIANT}; its Tokyo NMS keeps the top 300 (evaluators.py:150), ours 12 max N",
    ),
    PaperResult("tokyotm-val", {"R@1": 96.8, "R@5": 98.7}, _TABLE, variant=_VARIANT),
    PaperResult("msls-val", {"R@1": 82.7, "R@5": 88.5}, _TABLE, variant=_VARIANT),
)
"""ClusVPR's own row of its Table I (R@1/R@5; no R@10). Its MSLS-challenge numbers (49.4/58.2)
have no protocol here. No weights were released, so the method has no Checkpoint."""


@hookimpl
def vpr_bench_models() -> Iterator[ModelSpec]:
    """Register ``clusvpr``."""
    yield ModelSpec(
        name="clusvpr",
        build="vpr_bench_clusvpr.model:build_clusvpr",
        config_cls="vpr_bench_clusvpr.config:ClusVPRConfig",
        preprocess=PREPROCESS,
        prepare="vpr_bench_clusvpr.prepare:prepare_clusvpr",
        regions=21,
        summary="VGG16 to conv5_3 + 4 CWTNet blocks + grouped GeM-gated VLAD-64 (8192-d), "
        "21 multi-scale training regions (ClusVPR)",
    )


@hookimpl
def vpr_bench_methods() -> Iterator[MethodSpec]:
    """Register ``clusvpr`` (profiles ``paper`` and ``quick``)."""
    yield MethodSpec(
        name="clusvpr",
        model="clusvpr",
        loss="sfrs",
        trainer="region-generations",
        train_dataset="pitts30k-train",
        profiles={"paper": PAPER_PROFILE, "quick": QUICK_PROFILE},
        paper=CLUSVPR_PAPER_ROWS,
        summary="ClusVPR: clustering-weighted transformer + grouped VLAD, trained SFRS-style "
        "on 21 regions over 4 generations",
    )
