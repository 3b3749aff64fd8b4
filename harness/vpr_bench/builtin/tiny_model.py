"""A tiny CNN + GeM descriptor: fast on a CPU, for tests and smoke runs."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["GeM", "TinyGeM", "TinyGeMConfig", "build_tiny_gem"]


@dataclass
class TinyGeMConfig:
    """Options of the tiny model.

    Attributes:
        width: Channels of the first conv layer (doubled twice).
        dim: Descriptor dimension (a linear projection after GeM; 0 keeps the conv width).
        gem_p: Initial GeM exponent (trainable).
        seed: Seed of the weight initialisation (None: the global torch RNG).
    """

    width: int = 16
    dim: int = 64
    gem_p: float = 3.0
    seed: int | None = 0


class GeM(nn.Module):
    """Generalised-mean pooling over spatial positions with a trainable exponent."""

    def __init__(self, p: float = 3.0, eps: float = 1e-6) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.tensor(float(p)))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pool ``[B, C, H, W]`` to ``[B, C]``."""
        pooled = F.adaptive_avg_pool2d(x.clamp(min=self.eps).pow(self.p), 1)
        return pooled.pow(1.0 / self.p).flatten(1)


class TinyGeM(nn.Module):
    """Four 3x3 conv layers (stride 2 after the first), GeM, optional projection, L2 norm."""

    def __init__(self, config: TinyGeMConfig) -> None:
        super().__init__()
        if config.width < 1 or config.dim < 0:
            raise ValueError("TinyGeMConfig: width must be >= 1 and dim >= 0.")
        w = config.width
        self.features = nn.Sequential(
            nn.Conv2d(3, w, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(w, 2 * w, 3, stride=2, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(2 * w, 4 * w, 3, stride=2, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(4 * w, 4 * w, 3, stride=2, padding=1),
            nn.ReLU(inplace=True),
        )
        self.pool = GeM(config.gem_p)
        self.proj: nn.Module = nn.Linear(4 * w, config.dim) if config.dim else nn.Identity()
        self.descriptor_dim = config.dim or 4 * w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``[B, 3, H, W]`` images to L2-normalised ``[B, D]`` float32 descriptors."""
        return F.normalize(self.proj(self.pool(self.features(x))), dim=1)


def build_tiny_gem(config: TinyGeMConfig | None = None) -> TinyGeM:
    """Build the tiny model, seeded by ``config.seed`` so that builds are reproducible."""
    config = config or TinyGeMConfig()
    if config.seed is None:
        return TinyGeM(config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        return TinyGeM(config)
