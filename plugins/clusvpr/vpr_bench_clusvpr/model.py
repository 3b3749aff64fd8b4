"""The ClusVPR model: VGG16 (or the tiny trunk) + the ClusVPR aggregator (methods.md 5.1-5.4).

Module names follow the reference's ``EmbedNet(vgg16, ClusVPR)`` (``clusvpr.py:168-187``):
``base_model.base.N.*`` for the trunk and ``net_vlad.*`` for the aggregator, so a state dict
saved by ClusVPR's code (``module.`` prefixes from DDP, stripped by the harness) loads strictly
through ``--weights`` (the names are ``manifest_clusvpr.json``'s ``entries``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from vpr_bench.errors import ConfigError
from vpr_bench_clusvpr.aggregator import REGION_COUNT, ClusVPR
from vpr_bench_clusvpr.config import GRID, STRIDES, ClusVPRConfig, training_map_problem

__all__ = ["ClusVPRModel", "build_clusvpr", "normalise_vlad"]

log = logging.getLogger(__name__)


def normalise_vlad(vlad: torch.Tensor) -> torch.Tensor:
    """Intra-normalise ``[..., K, d]`` VLADs per cluster, flatten k-major and L2-normalise."""
    vlad = F.normalize(vlad, p=2, dim=-1)
    return F.normalize(vlad.flatten(-2), p=2, dim=-1)


class BaseModel(nn.Module):
    """Holds the trunk as ``base`` (the reference's ``VGG.base``), for its state-dict names."""

    def __init__(self, base: nn.Sequential) -> None:
        super().__init__()
        self.base = base

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W] -> [B, D, h, w]`` local features."""
        return self.base(images)  # type: ignore[no-any-return]


class ClusVPRModel(nn.Module):
    """Trunk -> CWTNet blocks -> grouped GeM-gated VLAD -> intra-norm -> L2.

    Args:
        trunk: ``[B, 3, H, W] -> [B, D, h, w]`` feature extractor.
        config: The model options.

    Attributes:
        descriptor_dim: ``K * d`` (8192 for the paper's model).
        region_count: 21, the region descriptors ``forward(images, regions=True)`` returns.
        stride: Pixels per feature-map cell of the trunk.
    """

    region_count: int = REGION_COUNT

    def __init__(self, trunk: nn.Sequential, config: ClusVPRConfig) -> None:
        super().__init__()
        self.config = config
        self.stride = STRIDES[config.backbone]
        self.base_model = BaseModel(trunk)
        self.net_vlad = ClusVPR(
            dim=config.local_dim,
            num_clusters=config.num_clusters,
            expansion=config.expansion,
            groups=config.groups,
            map_size=(config.map_height, config.map_width),
            blocks=config.blocks,
            mlp_dim=config.cwt_mlp_dim,
            heads=config.cwt_heads,
            layers=config.cwt_layers,
            knn_k=config.knn_k,
            dropout=config.cwt_dropout,
            gem_p=config.gem_p,
        )
        self.descriptor_dim = self.net_vlad.output_dim

    def local_features(self, images: torch.Tensor) -> torch.Tensor:
        """The trunk's ``[B, D, h, w]`` local features of preprocessed images."""
        return self.base_model(images)  # type: ignore[no-any-return]

    def forward(self, images: torch.Tensor, regions: bool = False) -> torch.Tensor:
        """Map preprocessed images to L2-normalised descriptors.

        Args:
            images: ``[B, 3, H, W]`` preprocessed images.
            regions: Return the 21 region descriptors ``[global, l0, l1, m0..m5, s0..s11]``
                (see :mod:`vpr_bench_clusvpr.aggregator`) instead of the image descriptor.

        Returns:
            ``[B, K * d]``, or ``[B, 21, K * d]`` with ``regions=True`` (region 0 equals the
            default output up to rounding).

        Raises:
            ValueError: ``images`` is not ``[B, 3, H, W]``.
            ConfigError: ``regions=True`` on a map smaller than the 3x4 grid, or a training
                forward on a map with an odd side; the message names an image size that fits.
        """
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(
                f"ClusVPRModel expects images [B, 3, H, W], got {tuple(images.shape)}."
            )
        features = self.local_features(images)
        if not (regions or self.training):
            return normalise_vlad(self.net_vlad(features))
        self._check_map(images, features, regions)
        if regions:
            return normalise_vlad(self.net_vlad.region_vlads(features))
        return normalise_vlad(self.net_vlad(features))

    def _check_map(self, images: torch.Tensor, features: torch.Tensor, regions: bool) -> None:
        """Refuse (one line) a map the region grid or the training blocks cannot take."""
        map_h, map_w = int(features.shape[2]), int(features.shape[3])
        rows, cols = GRID
        too_small = regions and (map_h < rows or map_w < cols)
        odd = self.training and (map_h % 2 or map_w % 2)
        if not (too_small or odd):
            return
        size = (int(images.shape[2]), int(images.shape[3]))
        message = training_map_problem(self.config.backbone, size) if self.training else None
        if message is None:  # evaluation: any map of at least 3x4 cells will do
            fit = (rows * self.stride, cols * self.stride)
            message = (
                f"ClusVPR cannot cut the {map_h}x{map_w} feature map of {size[0]}x{size[1]} "
                f"images into its {rows}x{cols} grid of s-patches; use images of at least "
                f"{fit[0]}x{fit[1]}"
            )
        raise ConfigError(f"{message}.")


def _resolve_pretrained(config: ClusVPRConfig) -> str | None:
    """``model.pretrained`` as a file for the NetVLAD plugin's trunk builder (or None).

    ``auto`` is torchvision's ImageNet VGG16 file in torch's hub cache, as ClusVPR's code uses
    (``vgg.py:43``); it is resolved here so the trunk builder does not warn about feeding it
    MatConvNet-style input, which ClusVPR's code does on purpose (methods.md C-8).
    """
    if config.pretrained is None or config.pretrained.lower() in ("", "none"):
        return None
    if config.pretrained != "auto":
        return config.pretrained
    if config.backbone != "vgg16":
        return None
    from torchvision.models import VGG16_Weights

    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(VGG16_Weights.IMAGENET1K_V1.url).name
    if cached.is_file():
        log.info(
            "ClusVPR backbone: torchvision ImageNet VGG16 (%s), fed MatConvNet-style input as "
            "ClusVPR's code does.",
            cached,
        )
        return str(cached)
    log.warning(
        "ClusVPR backbone vgg16: torchvision's ImageNet weights are not in %s; using RANDOM init.",
        cached.parent,
    )
    return None


def build_clusvpr(config: ClusVPRConfig | None = None) -> ClusVPRModel:
    """Build the ClusVPR model described by ``config`` (the ``clusvpr`` ModelSpec's builder).

    The trunk comes from the NetVLAD plugin's builder; VGG16 layers before ``train_layers`` are
    frozen whatever the weights (ClusVPR ``vgg.py:56-59``). When ``config.centroids`` names an
    HDF5 file, the VLAD is initialised from it; otherwise it keeps its random initialisation
    until the ``prepare`` step's k-means (:mod:`vpr_bench_clusvpr.prepare`).

    Raises:
        ConfigError: Unreadable or unfitting pretrained weights or centroids.
    """
    from vpr_bench_netvlad.backbones import build_trunk, freeze_before

    config = config or ClusVPRConfig()
    trunk = build_trunk(
        config.backbone, _resolve_pretrained(config), config.tiny_width, config.seed
    )
    freeze_before(trunk.module, config.backbone, config.train_layers)
    with torch.random.fork_rng(devices=[]):
        if config.seed is not None:
            torch.manual_seed(config.seed + 1)
        model = ClusVPRModel(trunk.module, config)
    if config.centroids:
        from vpr_bench_netvlad.centroids import load_centroids

        centres, descs = load_centroids(config.centroids)
        try:
            model.net_vlad.init_from_clusters(centres, descs)
        except ValueError as exc:
            raise ConfigError(f"Centroids file {config.centroids}: {exc}") from exc
        log.info(
            "ClusVPR initialised from %s (alpha %.4g).", config.centroids, model.net_vlad.alpha
        )
    return model
