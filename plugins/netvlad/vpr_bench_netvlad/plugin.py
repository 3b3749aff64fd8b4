"""vpr-bench hooks of the NetVLAD plugin: model ``netvlad`` and method ``netvlad``.

Pure data: every heavy object is a lazy ``"pkg.mod:obj"`` target, so ``vpr-bench list`` does not
import torch.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from typing import Any

from vpr_bench import MATCONVNET, MethodSpec, ModelSpec, PaperResult, ResizePolicy, hookimpl

__all__ = ["PAPER_PROFILE", "PREPROCESS", "QUICK_PROFILE", "vpr_bench_methods", "vpr_bench_models"]

PREPROCESS = dataclasses.replace(
    MATCONVNET, train_size=(480, 640), test_policy=ResizePolicy.hard(480, 640)
)
"""OpenIBL's input convention: RGB in 0..255 minus (123.68, 116.779, 103.939), 480x640."""

PAPER_PROFILE: dict[str, Any] = {
    "train_dataset": "pitts30k-train",
    "val_dataset": "pitts30k-val",
    "backbone": "vgg16",
    "num_clusters": 64,
    "train_layers": "conv5",
    "pretrained": "auto",
    "image_height": 480,
    "image_width": 640,
    "color_jitter": (0.7, 0.7, 0.7, 0.5),
    "epochs": 5,
    "batch_size": 4,
    "lr": 1e-3,
    "momentum": 0.9,
    "weight_decay": 1e-3,
    "lr_step": 5,
    "lr_gamma": 0.5,
    "margin": math.sqrt(0.1),
    "cache_queries": 1000,
    "neg_num": 10,
    "neg_pool": 1000,
    "cluster_images": 500,
    "cluster_per_image": 100,
    "pca_dim": 4096,
    "pca_samples": 10000,
    "seed": 43,
}
"""OpenIBL's recipe (methods.md sections 2 and 10)."""

QUICK_PROFILE: dict[str, Any] = {
    "train_dataset": "synthcity-train",
    "val_dataset": "synthcity-val",
    "backbone": "tiny",
    "tiny_width": 16,
    "num_clusters": 16,
    "train_layers": "full",
    "pretrained": None,
    "image_height": None,
    "image_width": None,
    "color_jitter": None,
    "epochs": 3,
    "batch_size": 4,
    "lr": 1e-2,
    "momentum": 0.9,
    "weight_decay": 1e-4,
    "margin": math.sqrt(0.1),
    "cache_queries": 200,
    "neg_num": 5,
    "neg_pool": 100,
    "cluster_images": 100,
    "cluster_per_image": 50,
    "pca_dim": None,
    "seed": 43,
}
"""CPU-sized: the tiny trunk from scratch with 16 clusters on the small synthetic city at native
size (a few minutes on 2 cores)."""

NETVLAD_PAPER_ROWS = (
    PaperResult(
        "pitts30k-val",
        {"R@1": 85.2, "R@5": 94.8, "R@10": 97.0},
        source="Nanne/pytorch-NetVlad README.md:7-20 (--split=val), methods.md 7.2",
        variant="pytorch-NetVlad VGG16 + NetVLAD-64, raw 32768-d, no PCA",
    ),
    PaperResult(
        "pitts30k-test",
        {"R@1": 85.6, "R@5": 92.9},
        source="ClusVPR paper, Table I (figs/clusvpr_quantitative_results.png), methods.md 7.3",
        variant="NetVLAD as cited by ClusVPR",
    ),
    PaperResult(
        "pitts250k-test",
        {"R@1": 86.0, "R@5": 93.2},
        source="ClusVPR paper, Table I, methods.md 7.3",
        variant="NetVLAD as cited by ClusVPR",
    ),
    PaperResult(
        "tokyo247",
        {"R@1": 73.3, "R@5": 82.9},
        source="ClusVPR paper, Table I, methods.md 7.3",
        variant="NetVLAD as cited by ClusVPR",
    ),
    PaperResult(
        "tokyotm-val",
        {"R@1": 93.9, "R@5": 96.8},
        source="ClusVPR paper, Table I, methods.md 7.3",
        variant="NetVLAD as cited by ClusVPR",
    ),
    PaperResult(
        "msls-val",
        {"R@1": 70.1, "R@5": 80.8},
        source="ClusVPR paper, Table I, methods.md 7.3",
        variant="NetVLAD as cited by ClusVPR",
    ),
)
"""Published NetVLAD numbers. OpenIBL's model zoo has no triplet-NetVLAD row (methods.md 7.1)."""


@hookimpl
def vpr_bench_models() -> Iterator[ModelSpec]:
    """Register ``netvlad``."""
    yield ModelSpec(
        name="netvlad",
        build="vpr_bench_netvlad.model:build_netvlad",
        config_cls="vpr_bench_netvlad.config:NetVLADConfig",
        preprocess=PREPROCESS,
        summary="VGG16 to conv5_3 + NetVLAD-64 (32768-d), OpenIBL layout; ResNet/tiny trunks too",
    )


@hookimpl
def vpr_bench_methods() -> Iterator[MethodSpec]:
    """Register ``netvlad`` (triplet loss, OpenIBL recipe)."""
    yield MethodSpec(
        name="netvlad",
        model="netvlad",
        loss="triplet",
        trainer="triplet-mining",
        train_dataset="pitts30k-train",
        config_cls="vpr_bench_netvlad.config:NetVLADMethodConfig",
        profiles={"paper": PAPER_PROFILE, "quick": QUICK_PROFILE},
        paper=NETVLAD_PAPER_ROWS,
        summary="NetVLAD trained with the triplet loss (margin sqrt(0.1)), OpenIBL recipe",
    )
