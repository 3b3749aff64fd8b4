"""Option dataclass of the NetVLAD model, the ``model.*`` keys (no torch import here).

Facts and defaults follow OpenIBL's recipe as described in methods.md Part A (sections 1-2, 10).
"""

from __future__ import annotations

from dataclasses import dataclass

from vpr_bench import bounded, check_ranges
from vpr_bench.errors import ConfigError

__all__ = [
    "BACKBONES",
    "TINY_STEM_NORMS",
    "TRAIN_LAYERS",
    "VARIANTS",
    "NetVLADConfig",
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

TINY_STEM_NORMS = ("batch", "instance")
"""Normalisation after the tiny trunk's first conv layer (per batch, or per image)."""


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
        tiny_stem_norm: Normalisation after the tiny trunk's first conv layer: ``"batch"`` or
            ``"instance"`` (per-image, as IBN-Net; the quick profile's choice, README).
        seed: Seed of the random weight initialisation (None: the global torch RNG).
        init_images: At most this many training images feed the k-means initialisation run
            by the model's ``prepare`` step (OpenIBL ``cluster.py``: 500).
        init_per_image: Local descriptors sampled per image for k-means (OpenIBL: 100; capped
            at the number of feature-map locations).
        init_iters: k-means iterations (OpenIBL: 100).
    """

    backbone: str = "vgg16"
    num_clusters: int = bounded(64, ge=1)
    train_layers: str = "conv5"
    pretrained: str | None = "auto"
    centroids: str | None = None
    variant: str = "openibl"
    alpha: float = bounded(100.0, gt=0)
    normalize_input: bool = True
    tiny_width: int = bounded(16, ge=1)
    tiny_stem_norm: str = "batch"
    seed: int | None = bounded(0, ge=0)
    init_images: int = bounded(500, ge=1)
    init_per_image: int = bounded(100, ge=1)
    init_iters: int = bounded(100, ge=1)

    def __post_init__(self) -> None:
        _choice("NetVLADConfig", "backbone", self.backbone, BACKBONES)
        _choice("NetVLADConfig", "train_layers", self.train_layers, TRAIN_LAYERS)
        _choice("NetVLADConfig", "variant", self.variant, VARIANTS)
        _choice("NetVLADConfig", "tiny_stem_norm", self.tiny_stem_norm, TINY_STEM_NORMS)
        # The numeric ranges are declared on the fields (one place), checked here too so a
        # config built in Python is refused like one resolved from the command line.
        check_ranges(self, prefix="model.")
