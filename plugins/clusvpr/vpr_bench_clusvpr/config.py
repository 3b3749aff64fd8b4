"""Option dataclass of the ClusVPR model, the ``model.*`` keys (no torch import here).

Defaults are the published model (methods.md Part A 5.1-5.3, ClusVPR ``clusvpr/models/
clusvpr.py:14-50``, ``clusvpr/models/configs.py:4-18``): VGG16 to conv5_3, 4 CWTNet blocks
(hidden size D/2 = 256, MLP 512, 2 heads, 1 encoder layer, dropout 0.1, 10 neighbours), a
grouped GeM-gated VLAD with K = 64 clusters, expansion 2 and 8 groups of 128 channels, and the
reference map size 30x40 (480x640 images). Every size is an option, so a CPU profile can be
small; the checks here refuse the combinations the layers cannot be built with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from vpr_bench import bounded, check_ranges
from vpr_bench.errors import ConfigError

if TYPE_CHECKING:
    from vpr_bench import ExperimentConfig

__all__ = [
    "BACKBONES",
    "GRID",
    "STRIDES",
    "TRAIN_LAYERS",
    "ClusVPRConfig",
    "feature_size",
]

BACKBONES = ("vgg16", "tiny")
"""Selectable trunks: VGG16 cut at conv5_3 (pre-ReLU, 512 channels, stride 16; the paper's) and
the harness's tiny conv trunk (``4 * tiny_width`` channels, stride 8; CPU profiles)."""

STRIDES = {"vgg16": 16, "tiny": 8}
"""Pixels per feature-map cell of each trunk."""

TRAIN_LAYERS = ("conv5", "conv4", "conv3", "conv2", "full")
"""The first trainable VGG16 block; every layer before it is frozen (ClusVPR ``vgg.py:19-27``)."""

GRID = (3, 4)
"""Rows and columns of the s-patch grid the training regions are cut from (``clusvpr.py:208``)."""

DEFAULT_TRAIN_SIZE = (480, 640)
"""The model's training image size (``preprocess.train_size``), used when trainer.height is 0."""


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(
            f"model.{name} = {value!r} is not valid; choose one of: {', '.join(allowed)}."
        )


def feature_size(backbone: str, height: int, width: int) -> tuple[int, int]:
    """The trunk's feature-map size for ``height x width`` images.

    VGG16's four 2x2 max-pools floor (``h // 16``); the tiny trunk's three stride-2 convolutions
    with padding 1 round up (``ceil(h / 8)``).
    """
    stride = STRIDES[backbone]
    if backbone == "vgg16":
        return height // stride, width // stride
    return -(-height // stride), -(-width // stride)


@dataclass
class ClusVPRConfig:
    """Options of the ClusVPR model (trunk + CWTNet blocks + grouped GeM-gated VLAD).

    Attributes:
        backbone: One of :data:`BACKBONES`.
        pretrained: ``"auto"`` (torchvision's ImageNet VGG16 file when it is in torch's hub cache,
            as ClusVPR's code uses, otherwise random init, logged), a path to a weights file
            (torchvision or MatConvNet layout) or None (random init).
        train_layers: First trainable VGG16 block; layers before it are frozen whatever the
            weights (ClusVPR ``vgg.py:56-59`` freezes even without pretrained weights). ClusVPR's
            training never passes its ``--layers`` to the backbone, so the code trains from
            ``conv5`` (the default); the tiny trunk is always trained whole.
        tiny_width: Width of the tiny trunk (its output has ``4 * tiny_width`` channels).
        seed: Seed of the random weight initialisation (None: the global torch RNG).
        num_clusters: K, the VLAD clusters (64).
        expansion: ``linear1`` widens the D local channels to ``expansion * D`` (2).
        groups: G, the groups the widened channels are split into (8; group size
            ``expansion * D / G`` = 128 for VGG16).
        map_height: Height of the reference feature map (30 for 480x640 VGG16 input): the
            per-location GeM exponent has ``map_height * map_width`` entries, and evaluation
            passes other maps through the blocks at this size. Even (the CWT pools 2x2).
        map_width: Width of the reference feature map (40). Even.
        blocks: CWTNet blocks (4).
        cwt_mlp_dim: Hidden width of the transformer MLP (512; the token width is D/2).
        cwt_heads: Attention heads (2); they split the D/2 token channels evenly.
        cwt_layers: Encoder layers per CWT (1).
        cwt_dropout: Dropout of the token embeddings and the MLP (0.1; the attention itself has
            none, as in the reference).
        knn_k: Neighbours of the clustering (density) weight; each token's 10 nearest plus
            itself (capped at the token count, where the reference would fail).
        gem_p: Initial value of every per-location GeM exponent (3.0).
        centroids: Optional HDF5 file (datasets ``centroids`` [K, d] and ``descriptors`` [M, d],
            d the group size) to initialise the VLAD from at build time instead of the
            ``prepare`` step's k-means.
        init_images: At most this many training images feed the k-means of ``prepare`` (500).
        init_per_image: Group vectors sampled per image for k-means (100).
        init_iters: k-means iterations (100).
    """

    backbone: str = "vgg16"
    pretrained: str | None = "auto"
    train_layers: str = "conv5"
    tiny_width: int = bounded(16, ge=1)
    seed: int | None = bounded(0, ge=0)
    num_clusters: int = bounded(64, ge=2)
    expansion: int = bounded(2, ge=1)
    groups: int = bounded(8, ge=1)
    map_height: int = bounded(30, ge=4)
    map_width: int = bounded(40, ge=4)
    blocks: int = bounded(4, ge=0)
    cwt_mlp_dim: int = bounded(512, ge=1)
    cwt_heads: int = bounded(2, ge=1)
    cwt_layers: int = bounded(1, ge=1)
    cwt_dropout: float = bounded(0.1, ge=0, lt=1)
    knn_k: int = bounded(10, ge=0)
    gem_p: float = bounded(3.0, gt=0)
    centroids: str | None = None
    init_images: int = bounded(500, ge=1)
    init_per_image: int = bounded(100, ge=1)
    init_iters: int = bounded(100, ge=1)

    def __post_init__(self) -> None:
        _choice("backbone", self.backbone, BACKBONES)
        _choice("train_layers", self.train_layers, TRAIN_LAYERS)
        check_ranges(self, prefix="model.")
        if self.map_height % 2 or self.map_width % 2:
            raise ConfigError(
                f"model.map_height x model.map_width = {self.map_height}x{self.map_width} must "
                "both be even (the CWT pools the map 2x2 and upsamples it back); e.g. 30x40."
            )
        dim = self.local_dim
        if (self.expansion * dim) % self.groups:
            raise ConfigError(
                f"model.expansion * D = {self.expansion} * {dim} is not divisible by "
                f"model.groups = {self.groups}; choose groups dividing {self.expansion * dim}."
            )
        if dim % 2 or (dim // 2) % self.cwt_heads:
            raise ConfigError(
                f"the CWT's token width D/2 = {dim // 2} (backbone {self.backbone}) is not "
                f"divisible by model.cwt_heads = {self.cwt_heads}; choose a divisor of {dim // 2}."
            )

    @property
    def local_dim(self) -> int:
        """D, the trunk's output channels (512 for VGG16, ``4 * tiny_width`` for the tiny one)."""
        return 512 if self.backbone == "vgg16" else 4 * self.tiny_width

    @property
    def group_dim(self) -> int:
        """The size of one group, ``expansion * D / groups`` (128 for the paper's model)."""
        return self.expansion * self.local_dim // self.groups

    def check(self, experiment: ExperimentConfig) -> None:
        """Refuse a training size whose feature map cannot be trained on (before any work).

        Training runs the CWT blocks on the whole map (2x2 pooling, so both sides even) and cuts
        it into the 3x4 grid of s-patches (at least one location each).

        Raises:
            ConfigError: The training map is odd or smaller than the grid; the message names an
                image size that fits.
        """
        trainer = experiment.trainer
        height = getattr(trainer, "height", None)
        if height is None:
            return
        width = getattr(trainer, "width", 0) or height
        if not height:
            height, width = DEFAULT_TRAIN_SIZE
        message = training_map_problem(self.backbone, (height, width))
        if message:
            raise ConfigError(f"{message} (trainer.height, trainer.width).")


def _fitting(size: int, minimum: int, stride: int) -> int:
    """The smallest image side at least ``size`` whose map side is even and >= ``minimum``."""
    cells = max(minimum, -(-size // stride))
    cells += cells % 2
    return cells * stride


def training_map_problem(backbone: str, image_size: tuple[int, int]) -> str | None:
    """Why images of ``image_size`` cannot be trained on, or None when they can.

    Args:
        backbone: The trunk (its stride and rounding give the map size).
        image_size: ``(height, width)`` of the training images.

    Returns:
        A one-line reason naming an image size that fits (no trailing period), or None.
    """
    height, width = image_size
    map_h, map_w = feature_size(backbone, height, width)
    rows, cols = GRID
    small = map_h < rows or map_w < cols
    odd = map_h % 2 or map_w % 2
    if not (small or odd):
        return None
    stride = STRIDES[backbone]
    fit = (_fitting(height, rows, stride), _fitting(width, cols, stride))
    why = (
        f"smaller than the {rows}x{cols} grid of s-patches"
        if small
        else "odd (the CWT blocks pool it 2x2 and upsample it back)"
    )
    return (
        f"ClusVPR cannot train on {height}x{width} images: their {backbone} feature map "
        f"{map_h}x{map_w} is {why}; use e.g. {fit[0]}x{fit[1]} images"
    )
