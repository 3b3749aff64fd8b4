"""The NetVLAD model: a convolutional trunk plus the NetVLAD layer (OpenIBL ``EmbedNet``)."""

from __future__ import annotations

import logging

import torch
from torch import nn

from vpr_bench.errors import ConfigError
from vpr_bench_netvlad.backbones import build_trunk, freeze_before
from vpr_bench_netvlad.config import NetVLADConfig
from vpr_bench_netvlad.layer import NetVLAD, vlad_to_descriptor
from vpr_bench_netvlad.regions import REGION_COUNT, region_descriptors

__all__ = ["NetVLADModel", "build_netvlad"]

log = logging.getLogger(__name__)


class NetVLADModel(nn.Module):
    """Trunk -> NetVLAD -> intra-norm -> flatten (k-major) -> L2: a ``K * D`` descriptor.

    Args:
        trunk: ``[B, 3, H, W] -> [B, D, h, w]`` feature extractor.
        local_dim: D, the trunk's output channels.
        config: The model options.
        frozen: Trunk modules kept frozen (their BatchNorm layers stay in eval mode).

    Attributes:
        descriptor_dim: ``num_clusters * local_dim`` (32 768 for VGG16 with K = 64).
        region_count: 9, the region descriptors ``forward(images, regions=True)`` returns per
            image (SFRS; the ``netvlad`` ModelSpec's ``regions``).
    """

    region_count: int = REGION_COUNT

    def __init__(
        self,
        trunk: nn.Sequential,
        local_dim: int,
        config: NetVLADConfig,
        frozen: list[nn.Module] | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.trunk = trunk
        self.net_vlad = NetVLAD(
            num_clusters=config.num_clusters,
            dim=local_dim,
            alpha=config.alpha,
            normalize_input=config.normalize_input,
            variant="nanne-v2" if config.variant == "nanne-v2" else "openibl",
        )
        self.local_dim = local_dim
        self.descriptor_dim = config.num_clusters * local_dim
        self._frozen = list(frozen or [])
        self.trunk_pretrained = False
        """True when the trunk's weights were loaded from a file (set by build_netvlad)."""

    def train(self, mode: bool = True) -> NetVLADModel:
        """Set train mode, keeping BatchNorm layers of frozen trunk blocks in eval mode."""
        super().train(mode)
        for block in self._frozen:
            for module in block.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        return self

    def local_features(self, images: torch.Tensor) -> torch.Tensor:
        """The trunk's ``[B, D, h, w]`` local features of preprocessed images."""
        return self.trunk(images)  # type: ignore[no-any-return]

    def vlad(self, images: torch.Tensor) -> torch.Tensor:
        """Unnormalised ``[B, K, D]`` VLAD of preprocessed images."""
        return self.net_vlad(self.local_features(images))  # type: ignore[no-any-return]

    def forward(self, images: torch.Tensor, regions: bool = False) -> torch.Tensor:
        """Map preprocessed images to L2-normalised descriptors.

        Args:
            images: ``[B, 3, H, W]`` preprocessed images.
            regions: Return SFRS's nine region descriptors instead of the image descriptor
                (see :mod:`vpr_bench_netvlad.regions`).

        Returns:
            ``[B, K * D]``, or ``[B, 9, K * D]`` with ``regions=True`` (region 0, the whole
            image, equals the default output up to rounding).

        Raises:
            ValueError: ``images`` is not ``[B, 3, H, W]``.
            ConfigError: ``regions=True`` and the feature map is smaller than 2x2.
        """
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(
                f"NetVLADModel expects images [B, 3, H, W], got {tuple(images.shape)}."
            )
        if regions:
            return region_descriptors(
                self.local_features(images),
                self.net_vlad,
                image_size=(int(images.shape[2]), int(images.shape[3])),
            )
        return vlad_to_descriptor(self.vlad(images))


def build_netvlad(config: NetVLADConfig | None = None) -> NetVLADModel:
    """Build the NetVLAD model described by ``config`` (the ``netvlad`` ModelSpec's builder).

    Pretrained trunk weights are loaded when available (see
    :func:`vpr_bench_netvlad.backbones.build_trunk`); layers before ``train_layers`` are frozen
    only when pretrained weights were loaded, as in OpenIBL. When ``config.centroids`` names an
    HDF5 file, the NetVLAD layer is initialised from it; otherwise it keeps its random
    initialisation until :meth:`NetVLAD.init_from_clusters` is called.
    """
    config = config or NetVLADConfig()
    trunk = build_trunk(
        config.backbone,
        config.pretrained,
        config.tiny_width,
        config.seed,
        tiny_stem_norm=config.tiny_stem_norm,
    )
    frozen: list[nn.Module] = []
    if trunk.pretrained_from is not None:
        frozen = freeze_before(trunk.module, config.backbone, config.train_layers)
    elif config.train_layers != "full" and config.backbone != "tiny":
        log.info(
            "Random-init trunk: every layer is trained (train_layers=%s ignored).",
            config.train_layers,
        )
    with torch.random.fork_rng(devices=[]):
        if config.seed is not None:
            torch.manual_seed(config.seed + 1)
        model = NetVLADModel(trunk.module, trunk.dim, config, frozen)
    model.trunk_pretrained = trunk.pretrained_from is not None
    if config.centroids:
        from vpr_bench_netvlad.centroids import load_centroids

        centres, descs = load_centroids(config.centroids)
        try:
            model.net_vlad.init_from_clusters(centres, descs)
        except ValueError as exc:
            raise ConfigError(f"Centroids file {config.centroids}: {exc}") from exc
        log.info(
            "NetVLAD initialised from %s (alpha %.4g).", config.centroids, model.net_vlad.alpha
        )
    return model
