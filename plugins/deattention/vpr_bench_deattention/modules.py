"""The de-attention module and the SE block (methods.md Methods B, C.1).

Layouts follow DEATT networks/deattention_model.py:124-199 (class ``DeAttention``, version 1)
and networks/senet.py:4-19 so that the released checkpoints' keys map one to one:
``crn_conv1..3`` (Conv -> ReLU -> BatchNorm, note the order), ``crn_conv4`` (1x1 to one
channel, ReLU, BatchNorm), and the two blocks the forward never uses, ``crn_downsample`` and
``crn_upsample``, kept for the state dict but frozen (they get no gradient).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vpr_bench.errors import ConfigError

__all__ = ["MIN_MAP_SIZE", "DeAttention", "SEAttention", "check_map_size"]

MIN_MAP_SIZE = 4
"""Reflect padding of 3 (the 7x7 branch) needs a feature map of at least 4x4."""


def check_map_size(height: int, width: int, stride: int, image_size: tuple[int, int]) -> None:
    """Refuse a feature map under 4x4 in one line naming the least input size.

    Args:
        height: Feature-map height.
        width: Feature-map width.
        stride: The trunk's output stride (to compute the least input size).
        image_size: The input's ``(H, W)``.

    Raises:
        ConfigError: The map is smaller than :data:`MIN_MAP_SIZE` in either direction.
    """
    if height < MIN_MAP_SIZE or width < MIN_MAP_SIZE:
        least = MIN_MAP_SIZE * stride
        raise ConfigError(
            f"deattention-netvlad: input {image_size[0]}x{image_size[1]} gives a {height}x{width} "
            f"feature map, but the de-attention module's 7x7 reflect padding needs at least "
            f"{MIN_MAP_SIZE}x{MIN_MAP_SIZE}; use images of at least {least}x{least} pixels "
            "(trainer.height / trainer.width, or the dataset's test size)."
        )


def _branch(dim: int, out: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(dim, out, kernel, padding=kernel // 2, padding_mode="reflect"),
        nn.ReLU(),
        nn.BatchNorm2d(out),
    )


class DeAttention(nn.Module):
    """CRN-like multi-scale context filter giving a per-location keep mask.

    ``X = F / ||F||`` per location; three branches (3x3 -> 32, 5x5 -> 32, 7x7 -> 20, reflect
    padding, biased convs, Conv -> ReLU -> BN); concatenation; 1x1 -> 1, ReLU, BN, sigmoid =
    ``M``; output ``F * M`` (the unnormalised F) and ``M``.

    Args:
        dim: Channels of F (512 for VGG16 conv5_3).
        widths: Output channels of the three branches.
    """

    def __init__(self, dim: int, widths: tuple[int, int, int] = (32, 32, 20)) -> None:
        super().__init__()
        d1, d2, d3 = widths
        self.crn_downsample = nn.Sequential(
            nn.Conv2d(dim, dim, 3, padding=1, padding_mode="reflect"),
            nn.ReLU(),
            nn.BatchNorm2d(dim),
            nn.MaxPool2d(2, 2),
        )
        self.crn_conv1 = _branch(dim, d1, 3)
        self.crn_conv2 = _branch(dim, d2, 5)
        self.crn_conv3 = _branch(dim, d3, 7)
        self.crn_conv4 = nn.Sequential(nn.Conv2d(d1 + d2 + d3, 1, 1), nn.ReLU(), nn.BatchNorm2d(1))
        self.crn_upsample = nn.Sequential(
            nn.ConvTranspose2d(1, 1, 2, stride=2), nn.ReLU(), nn.BatchNorm2d(dim)
        )
        for unused in (self.crn_downsample, self.crn_upsample):
            unused.requires_grad_(False)  # never in the forward (the original's leftovers)

    def mask(self, features: torch.Tensor) -> torch.Tensor:
        """The ``[B, 1, h, w]`` keep mask of ``[B, C, h, w]`` features."""
        x = F.normalize(features, p=2, dim=1)
        context = torch.cat([self.crn_conv1(x), self.crn_conv2(x), self.crn_conv3(x)], dim=1)
        return torch.sigmoid(self.crn_conv4(context))

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(F * M, M)`` for ``[B, C, h, w]`` features."""
        mask = self.mask(features)
        return features * mask, mask


class SEAttention(nn.Module):
    """Squeeze-excitation: ``F * sigmoid(W2 relu(W1 GAP(F)))``, no biases (senet.py:4-19).

    Args:
        dim: Channels.
        reduction: Bottleneck ratio (16).
    """

    def __init__(self, dim: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(1, dim // reduction)
        self.fc = nn.Sequential(
            nn.Linear(dim, hidden, bias=False),
            nn.ReLU(),
            nn.Linear(hidden, dim, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Channel-reweighted ``[B, C, h, w]`` features."""
        scale = self.fc(features.mean(dim=(2, 3)))
        return features * scale[:, :, None, None]
