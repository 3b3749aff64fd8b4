"""A tiny CNN + GeM descriptor: fast on a CPU, for tests and smoke runs.

Why BatchNorm and a bias-free projection: with plain conv + ReLU layers the GeM-pooled features
of a randomly initialised net are small (~0.02) positive vectors that differ little between
images, and a ``Linear`` projection's bias (~U(-1/8, 1/8)) dominates them, so every image got
nearly the same descriptor (mean pairwise cosine 0.998 on synthcity tiny). The triplet loss then
sat at its margin and the net fitted even its own training queries poorly (train R@1 15 -> 58 %
in 48 Adam steps). Normalised conv layers and a projection without bias keep descriptors apart
(train R@1 15 -> 93 % in the same steps, loss 0.32 -> 0.08).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vpr_bench.ranges import bounded

__all__ = ["GeM", "TinyGeM", "TinyGeMConfig", "build_tiny_gem"]


@dataclass
class TinyGeMConfig:
    """Options of the tiny model.

    Attributes:
        width: Channels of the first conv layer (doubled twice).
        dim: Descriptor dimension (a linear projection after GeM; 0 keeps the conv width).
        gem_p: Initial GeM exponent (trainable).
        norm: ``"batch"`` (BatchNorm after each conv, the default) or ``"none"`` (plain conv
            layers with bias, the original tiny net).
        stem_norm: Normalisation after the first conv layer: ``"same"`` (as ``norm``) or
            ``"instance"`` (InstanceNorm with a learnt scale and shift, as IBN-Net puts in its
            shallow layers: it divides out each image's own brightness and contrast per
            feature channel, so a dim dusk or rain image reaches the next layers at the scale
            of a day image; see :mod:`vpr_bench.builtin.tiny_model`'s notes).
        seed: Seed of the weight initialisation (None: the global torch RNG).
    """

    width: int = bounded(16, ge=1)
    dim: int = bounded(64, ge=0)
    gem_p: float = bounded(3.0, gt=0)
    norm: str = "batch"
    stem_norm: str = "same"
    seed: int | None = bounded(0, ge=0)


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
    """Four 3x3 conv layers (stride 2 after the first, optional BatchNorm), GeM, projection, L2."""

    def __init__(self, config: TinyGeMConfig) -> None:
        super().__init__()
        if config.width < 1 or config.dim < 0:
            raise ValueError("TinyGeMConfig: width must be >= 1 and dim >= 0.")
        if config.norm not in ("batch", "none"):
            raise ValueError(f"TinyGeMConfig: norm must be 'batch' or 'none', got {config.norm!r}.")
        if config.stem_norm not in ("same", "instance"):
            raise ValueError(
                f"TinyGeMConfig: stem_norm must be 'same' or 'instance', got {config.stem_norm!r}."
            )
        w = config.width
        layers: list[nn.Module] = []
        plan = ((3, w, 1), (w, 2 * w, 2), (2 * w, 4 * w, 2), (4 * w, 4 * w, 2))
        for index, (c_in, c_out, stride) in enumerate(plan):
            norm = config.norm
            if index == 0 and config.stem_norm == "instance":
                norm = "instance"
            conv = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=norm == "none")
            layers.append(conv)
            if norm == "batch":
                layers.append(nn.BatchNorm2d(c_out))
            elif norm == "instance":
                # Affine parameters start at 1 and 0: no random draw, so the conv weights
                # are the same tensors as in the BatchNorm trunk of the same seed.
                layers.append(nn.InstanceNorm2d(c_out, affine=True))
            layers.append(nn.ReLU(inplace=True))
        self.features = nn.Sequential(*layers)
        self.pool = GeM(config.gem_p)
        self.proj: nn.Module = (
            nn.Linear(4 * w, config.dim, bias=False) if config.dim else nn.Identity()
        )
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
