"""Option dataclasses of the NetVLAD model and of the NetVLAD method (no torch import here).

Facts and defaults follow OpenIBL's recipe as described in methods.md Part A (sections 1-2, 10).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from vpr_bench.errors import ConfigError

__all__ = [
    "BACKBONES",
    "TRAIN_LAYERS",
    "VARIANTS",
    "NetVLADConfig",
    "NetVLADMethodConfig",
]

BACKBONES = (
    "vgg16",
    "resnet18-conv4",
    "resnet18-conv5",
    "resnet50-conv4",
    "resnet50-conv5",
    "tiny",
)
"""Selectable trunks: VGG16 cut at conv5_3 (pre-ReLU), torchvision ResNets cut after layer3
(``conv4``) or layer4 (``conv5``), and the built-in tiny model's conv trunk."""

TRAIN_LAYERS = ("conv5", "conv4", "conv3", "conv2", "full")
"""The first trainable block; every layer before it is frozen (OpenIBL ``--layers``)."""

VARIANTS = ("openibl", "nanne-v2")
"""Soft-assignment initialisation: ``openibl`` (= Nanne's ``vladv1``: ``W = alpha * c_hat``, no
bias) or ``nanne-v2`` (pytorch-NetVlad ``vladv2``: ``W = 2 alpha C``, bias ``-alpha ||C||``)."""


def _choice(owner: str, name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(
            f"{owner}.{name} = {value!r} is not valid; choose one of: {', '.join(allowed)}."
        )


@dataclass
class NetVLADConfig:
    """Options of the NetVLAD model (trunk + NetVLAD layer).

    Attributes:
        backbone: One of :data:`BACKBONES`.
        num_clusters: K, the number of NetVLAD clusters (64 in the paper).
        train_layers: First trainable block (``conv5`` in every OpenIBL script); layers before
            it are frozen, and only when pretrained weights were loaded (as OpenIBL does).
        pretrained: ``"auto"`` (torchvision's cache dir when the ImageNet file is there,
            otherwise random init, logged), a path to a weights file (torchvision state dict or
            the MatConvNet ``vd16_offtheshelf_conv5_3_max.pth`` layout), or None (random init).
        centroids: Optional HDF5 file (datasets ``centroids`` [K, D] and ``descriptors``
            [M, D]) to initialise the layer from at build time.
        variant: Soft-assignment initialisation, one of :data:`VARIANTS`.
        alpha: Initial alpha before k-means initialisation (replaced by it).
        normalize_input: L2-normalise each local descriptor before assignment.
        tiny_width: Width of the tiny trunk (its output has ``4 * tiny_width`` channels).
        seed: Seed of the random weight initialisation (None: the global torch RNG).
    """

    backbone: str = "vgg16"
    num_clusters: int = 64
    train_layers: str = "conv5"
    pretrained: str | None = "auto"
    centroids: str | None = None
    variant: str = "openibl"
    alpha: float = 100.0
    normalize_input: bool = True
    tiny_width: int = 16
    seed: int | None = 0

    def __post_init__(self) -> None:
        _choice("NetVLADConfig", "backbone", self.backbone, BACKBONES)
        _choice("NetVLADConfig", "train_layers", self.train_layers, TRAIN_LAYERS)
        _choice("NetVLADConfig", "variant", self.variant, VARIANTS)
        if self.num_clusters < 1:
            raise ConfigError(
                f"NetVLADConfig.num_clusters must be >= 1, got {self.num_clusters} (paper: 64)."
            )
        if self.tiny_width < 1:
            raise ConfigError(f"NetVLADConfig.tiny_width must be >= 1, got {self.tiny_width}.")


@dataclass
class NetVLADMethodConfig:
    """Experiment options of the NetVLAD method (OpenIBL "triplet" recipe by default).

    The defaults are the paper profile (methods.md section 2 and 10); ``quick`` overrides them
    for CPU smoke runs. Training-loop keys are read by the ``triplet-mining`` trainer.

    Attributes:
        train_dataset: ``--dataset`` style name of the training split.
        val_dataset: Split used for model selection each epoch.
        backbone: See :class:`NetVLADConfig`.
        num_clusters: See :class:`NetVLADConfig`.
        train_layers: See :class:`NetVLADConfig`.
        pretrained: See :class:`NetVLADConfig`.
        centroids: See :class:`NetVLADConfig`.
        variant: See :class:`NetVLADConfig`.
        tiny_width: See :class:`NetVLADConfig`.
        image_height: Training/caching image height; None with ``image_width`` None: native.
        image_width: Training/caching image width.
        color_jitter: (brightness, contrast, saturation, hue) of the training jitter, or None.
        epochs: Training epochs.
        batch_size: Tuples per optimiser step (OpenIBL: 4 GPUs x 1 tuple).
        lr: SGD learning rate.
        momentum: SGD momentum.
        weight_decay: SGD weight decay.
        lr_step: StepLR step in epochs.
        lr_gamma: StepLR factor.
        margin: Triplet margin on plain L2 distances (sqrt(0.1)).
        cache_queries: Queries per descriptor-cache refresh.
        neg_num: Negatives per tuple.
        neg_pool: Random negative candidates drawn per query before keeping the hardest.
        pos_radius_m: Training positives lie within this radius.
        neg_radius_m: Negatives lie outside this radius.
        cluster_images: Images sampled for k-means initialisation.
        cluster_per_image: Local descriptors sampled per image for k-means.
        cluster_iters: k-means iterations.
        pca_dim: PCA-whitening output dimension applied by the harness (None: no PCA).
        pca_samples: At most this many training descriptors fit the PCA.
        select_metric: Model-selection metric on ``val_dataset``.
        seed: Seed of sampling, k-means and training.
    """

    train_dataset: str = "pitts30k-train"
    val_dataset: str = "pitts30k-val"
    backbone: str = "vgg16"
    num_clusters: int = 64
    train_layers: str = "conv5"
    pretrained: str | None = "auto"
    centroids: str | None = None
    variant: str = "openibl"
    tiny_width: int = 16
    image_height: int | None = 480
    image_width: int | None = 640
    color_jitter: tuple[float, float, float, float] | None = (0.7, 0.7, 0.7, 0.5)
    epochs: int = 5
    batch_size: int = 4
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 1e-3
    lr_step: int = 5
    lr_gamma: float = 0.5
    margin: float = math.sqrt(0.1)
    cache_queries: int = 1000
    neg_num: int = 10
    neg_pool: int = 1000
    pos_radius_m: float = 10.0
    neg_radius_m: float = 25.0
    cluster_images: int = 500
    cluster_per_image: int = 100
    cluster_iters: int = 100
    pca_dim: int | None = 4096
    pca_samples: int = 10000
    select_metric: str = "R@5"
    seed: int = 43

    def __post_init__(self) -> None:
        owner = type(self).__name__
        if (self.image_height is None) != (self.image_width is None):
            raise ConfigError(
                f"{owner}: set both image_height and image_width (e.g. 480 and 640), or neither "
                "for native size."
            )
        for name in (
            "epochs",
            "batch_size",
            "cache_queries",
            "neg_num",
            "neg_pool",
            "cluster_images",
            "cluster_per_image",
            "cluster_iters",
            "pca_samples",
        ):
            value = getattr(self, name)
            if value < 1:
                raise ConfigError(f"{owner}.{name} must be >= 1, got {value}.")
        if self.neg_pool < self.neg_num:
            raise ConfigError(
                f"{owner}: neg_pool ({self.neg_pool}) must be >= neg_num ({self.neg_num})."
            )
        if self.pos_radius_m > self.neg_radius_m:
            raise ConfigError(
                f"{owner}: pos_radius_m ({self.pos_radius_m}) must not exceed neg_radius_m "
                f"({self.neg_radius_m})."
            )
        if self.pca_dim is not None and self.pca_dim < 1:
            raise ConfigError(f"{owner}.pca_dim must be >= 1 or None, got {self.pca_dim}.")
        self.model_config()  # validates the model options early

    @property
    def image_size(self) -> tuple[int, int] | None:
        """(height, width) of training images, or None for native size."""
        if self.image_height is None or self.image_width is None:
            return None
        return (self.image_height, self.image_width)

    def model_config(self) -> NetVLADConfig:
        """The :class:`NetVLADConfig` these options describe."""
        return NetVLADConfig(
            backbone=self.backbone,
            num_clusters=self.num_clusters,
            train_layers=self.train_layers,
            pretrained=self.pretrained,
            centroids=self.centroids,
            variant=self.variant,
            tiny_width=self.tiny_width,
        )

    def loss_config(self) -> Any:
        """The triplet loss options (``vpr_bench.builtin.triplet.TripletConfig``)."""
        from vpr_bench.builtin.triplet import TripletConfig

        return TripletConfig(margin=self.margin)
