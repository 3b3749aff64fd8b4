"""The ``daco`` model: a randomly initialised trunk f, global average pooling, a projection g.

DaCo model.py:7-25 (451e13d): ``f`` is torchvision's ``resnet50()`` (no pretrained weights)
with every child but the final Linear, so it ends in the global average pool (2048-d);
``g`` = Linear(2048, 512, no bias) - BatchNorm1d(512) - ReLU - Linear(512, 2048). The
retrieval descriptor is the L2-normalised f output (main.py:76-77); g only serves the losses.
The state dict is exactly ``f.*`` and ``g.*``, the layout of DaCo's released
``<data>_<method>_model.pth``; the input normaliser is a non-persistent buffer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vpr_bench.errors import ConfigError
from vpr_bench.models import TinyGeM, TinyGeMConfig
from vpr_bench_daco.config import BACKBONES, DaCoConfig, normalizer_stats

__all__ = ["DaCoModel", "build_daco", "projection_head"]


def _trunk(config: DaCoConfig) -> tuple[nn.Sequential, int]:
    if config.backbone in ("resnet50", "resnet18"):
        from torchvision import models

        net = getattr(models, config.backbone)(weights=None)
        children = [m for m in net.children() if not isinstance(m, nn.Linear)]
        return nn.Sequential(*children), int(net.fc.in_features)
    if config.backbone == "tiny":
        if config.tiny_width < 1:
            raise ConfigError(f"model.tiny_width must be >= 1, got {config.tiny_width}.")
        if config.tiny_stem_norm not in ("batch", "instance"):
            raise ConfigError(
                f"model.tiny_stem_norm = {config.tiny_stem_norm!r} is not valid; choose one of: "
                "batch, instance."
            )
        stem = "instance" if config.tiny_stem_norm == "instance" else "same"
        tiny = TinyGeM(TinyGeMConfig(width=config.tiny_width, dim=0, seed=None, stem_norm=stem))
        return nn.Sequential(*tiny.features, nn.AdaptiveAvgPool2d(1)), 4 * config.tiny_width
    raise ConfigError(
        f"model.backbone {config.backbone!r} is unknown: use one of {', '.join(BACKBONES)}."
    )


def projection_head(in_dim: int, hidden_dim: int, proj_dim: int) -> nn.Sequential:
    """g: Linear(in, hidden, no bias) - BatchNorm1d - ReLU - Linear(hidden, proj)."""
    return nn.Sequential(
        nn.Linear(in_dim, hidden_dim, bias=False),
        nn.BatchNorm1d(hidden_dim),
        nn.ReLU(inplace=True),
        nn.Linear(hidden_dim, proj_dim, bias=True),
    )


class DaCoModel(nn.Module):
    """DaCo's network; its eval forward gives the L2-normalised pooled trunk feature.

    Attributes:
        descriptor_dim: Width of the descriptor (2048 for ResNet-50).
        proj_dim: Width of g's output.
        head: Which head the weights have: ``"HEAD"`` (the APIN 2023 code, 2048-d projection),
            ``"ICMR 2021"`` (128-d) or ``"custom"``; set by the released-weights loader.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, config: DaCoConfig) -> None:
        super().__init__()
        mean, std = normalizer_stats(config.normalizer)
        if config.hidden_dim < 1 or config.proj_dim < 1:
            raise ConfigError(
                f"model.hidden_dim and model.proj_dim must be >= 1, got {config.hidden_dim}, "
                f"{config.proj_dim}."
            )
        self.normalizer = config.normalizer
        self.f, self.descriptor_dim = _trunk(config)
        self.g = projection_head(self.descriptor_dim, config.hidden_dim, config.proj_dim)
        self.proj_dim = config.proj_dim
        self.head = _head_name(config.proj_dim)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    @property
    def auxiliary_parameters(self) -> tuple[str, ...]:
        """The head's parameters: trained by the losses, unused by the descriptor."""
        return tuple(f"g.{name}" for name, _ in self.g.named_parameters())

    def set_head(self, hidden_dim: int, proj_dim: int) -> None:
        """Replace g by a fresh head of these widths (to load weights with another head)."""
        device = next(self.g.parameters()).device
        self.g = projection_head(self.descriptor_dim, hidden_dim, proj_dim).to(device)
        self.proj_dim = proj_dim
        self.head = _head_name(proj_dim)

    def feature(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled, un-normalised trunk feature ``[B, descriptor_dim]`` of [0, 1] images."""
        x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        return torch.flatten(self.f(x), start_dim=1)

    def forward(self, x: torch.Tensor, *, projection: bool = False) -> torch.Tensor:
        """``[B, 3, H, W]`` in [0, 1] -> L2-normalised ``[B, descriptor_dim]``.

        With ``projection=True``: ``[B, descriptor_dim + proj_dim]``, the normalised feature
        then the normalised projection g(feature) (model.py:21-25), for the losses.
        """
        feature = self.feature(x)
        if not projection:
            return F.normalize(feature, dim=-1)
        proj = self.g(feature)
        return torch.cat([F.normalize(feature, dim=-1), F.normalize(proj, dim=-1)], dim=1)


def _head_name(proj_dim: int) -> str:
    return {2048: "HEAD", 128: "ICMR 2021"}.get(proj_dim, "custom")


def build_daco(config: DaCoConfig) -> DaCoModel:
    """Build the ``daco`` model (random initialisation from the global torch RNG)."""
    return DaCoModel(config)
