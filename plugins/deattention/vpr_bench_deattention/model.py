"""The ``deattention-netvlad`` model: NetVLAD's trunk -> DeAttention -> SE -> NetVLAD's layer.

Built from the NetVLAD plugin's public pieces (:func:`vpr_bench_netvlad.build_netvlad` makes
the trunk, freezing and layer; :class:`vpr_bench_netvlad.NetVLADModel` is the base class), so
k-means preparation, centroid files and the trunk options are NetVLAD's.

``[IMPORTANT BEHAVIOUR]`` (methods.md C.2), kept on purpose: the NetVLAD layer L2-normalises
every local descriptor, so the per-location mask cancels, ``normalise(F * M) = normalise(F)``;
without SE the mask never changes the descriptor (it acts through the auxiliary mask loss and
the centroids), with SE only through the squeeze (a mask-weighted average of F).
"""

from __future__ import annotations

import logging

import torch

from vpr_bench.errors import ConfigError
from vpr_bench_deattention.config import DeAttentionConfig
from vpr_bench_deattention.modules import DeAttention, SEAttention, check_map_size
from vpr_bench_netvlad import NetVLADModel, build_netvlad, vlad_to_descriptor

__all__ = ["DeAttentionNetVLAD", "build_deattention_netvlad"]

log = logging.getLogger(__name__)


class DeAttentionNetVLAD(NetVLADModel):
    """NetVLAD with the de-attention mask and SE between the trunk and the layer.

    Args:
        base: A built NetVLAD model whose trunk, layer and frozen blocks are taken over.
        config: The model options.

    Attributes:
        deattention: The :class:`DeAttention` module, or None (``model.deattention`` off).
        senet_attention: The :class:`SEAttention` block, or None (``model.se`` off).
        last_mask: The ``[B, 1, h, w]`` mask of the latest forward (None without
            de-attention); the trainer's mask loss reads it (it keeps its graph in training).
    """

    def __init__(self, base: NetVLADModel, config: DeAttentionConfig) -> None:
        super().__init__(base.trunk, base.local_dim, config, base._frozen)
        self.net_vlad = base.net_vlad
        self.trunk_pretrained = base.trunk_pretrained
        self.deattention = DeAttention(base.local_dim) if config.deattention else None
        self.senet_attention = (
            SEAttention(base.local_dim, config.se_reduction) if config.se else None
        )
        self.last_mask: torch.Tensor | None = None

    def head(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """De-attention then SE on trunk features: ``(features for NetVLAD, mask or None)``."""
        mask = None
        if self.deattention is not None:
            features, mask = self.deattention(features)
        if self.senet_attention is not None:
            features = self.senet_attention(features)
        return features, mask

    def vlad(self, images: torch.Tensor) -> torch.Tensor:
        """Unnormalised ``[B, K, D]`` VLAD of preprocessed images (mask kept in last_mask)."""
        features = self.local_features(images)
        check_map_size(
            int(features.shape[2]),
            int(features.shape[3]),
            max(1, round(images.shape[2] / features.shape[2])),
            (int(images.shape[2]), int(images.shape[3])),
        )
        features, self.last_mask = self.head(features)
        return self.net_vlad(features)  # type: ignore[no-any-return]

    def plain_descriptor(self, images: torch.Tensor) -> torch.Tensor:
        """Trunk + NetVLAD only, no de-attention or SE (the original's mining cache)."""
        return vlad_to_descriptor(self.net_vlad(self.local_features(images)))

    def forward(self, images: torch.Tensor, regions: bool = False) -> torch.Tensor:
        """Map preprocessed ``[B, 3, H, W]`` images to L2-normalised ``[B, K * D]`` descriptors.

        Raises:
            ConfigError: ``regions=True`` (this model has no region descriptors), or the
                feature map is under 4x4.
        """
        if regions:
            raise ConfigError("deattention-netvlad has no region descriptors (regions=0).")
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(
                f"DeAttentionNetVLAD expects images [B, 3, H, W], got {tuple(images.shape)}."
            )
        return vlad_to_descriptor(self.vlad(images))


def build_deattention_netvlad(config: DeAttentionConfig | None = None) -> DeAttentionNetVLAD:
    """Build the model of ``config`` (the ``deattention-netvlad`` ModelSpec's builder).

    The trunk and layer come from :func:`vpr_bench_netvlad.build_netvlad` with the same
    options; the de-attention and SE weights are drawn from ``config.seed + 2`` when a seed is
    set (the NetVLAD layer uses ``seed + 1``).
    """
    config = config or DeAttentionConfig()
    base = build_netvlad(config)
    with torch.random.fork_rng(devices=[]):
        if config.seed is not None:
            torch.manual_seed(config.seed + 2)
        model = DeAttentionNetVLAD(base, config)
    return model
