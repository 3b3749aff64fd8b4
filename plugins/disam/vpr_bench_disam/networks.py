"""DISAM's per-domain networks: ComboGAN encoders, decoders and two-stream discriminators.

Written from methods.md Part A.1 (DISAM ``models/networks.py:114-305, 451-466`` at commit
f0c3f2c). Module names follow the reference so that its plain per-network state dicts
(``<epoch>_net_G<i>.pth`` / ``<epoch>_net_D<i>.pth``, ``manifest_disam.json``) load strictly:

* encoder ``model.{0..9}`` = reflection pad, 7x7 conv, norm, PReLU, then two stride-2 3x3
  convolutions each with norm and PReLU, then ``model.{10..}`` residual blocks;
* decoder ``model.{0..k-1}`` residual blocks, two transposed 4x4 convolutions with norm and
  PReLU, reflection pad, 7x7 conv, tanh;
* residual block ``conv_block.{0..6}`` = pad, conv, norm, PReLU, pad, conv, norm;
* discriminator ``model_gray`` (luminance) and ``model_rgb`` (Gaussian-blurred RGB) stacks of
  ``Sequential`` stages whose last channel (from the second stage on) is a patch prediction.

Every PReLU has a single parameter (torch's default, initial 0.25); normalisation is
``InstanceNorm2d(affine=False)``, so the convolutions carry biases.
"""

from __future__ import annotations

from typing import cast

import numpy as np
import torch
from scipy.ndimage import gaussian_filter
from torch import nn

__all__ = [
    "GAN_MULTIPLIERS",
    "Discriminator",
    "Encoder",
    "Decoder",
    "ResnetBlock",
    "blur_kernel",
    "gan_loss",
    "init_weights",
    "luminance",
]

GAN_MULTIPLIERS = (1.0, 2.0, 3.0, 5.0)
"""Weights of the discriminator's four prediction maps (``networks.py:101-105``: 1..k, last +1)."""


def _norm(channels: int) -> nn.Module:
    return nn.InstanceNorm2d(channels, affine=False)


class ResnetBlock(nn.Module):
    """``y = x + [pad, conv3x3, norm, PReLU, pad, conv3x3, norm](x)`` (no activation after)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, kernel_size=3, bias=True),
            _norm(dim),
            nn.PReLU(),
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, kernel_size=3, bias=True),
            _norm(dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual update of ``x`` ``[B, dim, h, w]``."""
        return x + self.conv_block(x)  # type: ignore[no-any-return]


class Encoder(nn.Module):
    """ResnetGenEncoder: ``[B, 3, H, W] -> [B, 4*ngf, H/4, W/4]`` (256x64x64 for 256x256).

    Args:
        ngf: Width of the first convolution (64).
        blocks: Residual blocks at the end (4 = ``netG_n_blocks 9 // 2``).
        in_channels: Image channels (3).
    """

    def __init__(self, ngf: int = 64, blocks: int = 4, in_channels: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, ngf, kernel_size=7, bias=True),
            _norm(ngf),
            nn.PReLU(),
        ]
        for i in range(2):
            width = ngf * 2**i
            layers += [
                nn.Conv2d(width, 2 * width, kernel_size=3, stride=2, padding=1, bias=True),
                _norm(2 * width),
                nn.PReLU(),
            ]
        layers += [ResnetBlock(4 * ngf) for _ in range(blocks)]
        self.model = nn.Sequential(*layers)
        self.out_channels = 4 * ngf

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """The latent code of ``images`` (no pooling, no normalisation)."""
        return self.model(images)  # type: ignore[no-any-return]


class Decoder(nn.Module):
    """ResnetGenDecoder: ``[B, 4*ngf, h, w] -> [B, 3, 4h, 4w]`` in ``[-1, 1]``.

    Args:
        ngf: Width of the last hidden layer (64).
        blocks: Residual blocks at the start (5 = ``9 - 9 // 2``).
        out_channels: Image channels (3).
    """

    def __init__(self, ngf: int = 64, blocks: int = 5, out_channels: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = [ResnetBlock(4 * ngf) for _ in range(blocks)]
        for i in range(2):
            width = ngf * 2 ** (2 - i)
            layers += [
                nn.ConvTranspose2d(
                    width, width // 2, kernel_size=4, stride=2, padding=1, bias=True
                ),
                _norm(width // 2),
                nn.PReLU(),
            ]
        layers += [
            nn.ReflectionPad2d(3),
            nn.Conv2d(ngf, out_channels, kernel_size=7),
            nn.Tanh(),
        ]
        self.model = nn.Sequential(*layers)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        """The image decoded from ``latent``."""
        return self.model(latent)  # type: ignore[no-any-return]


def blur_kernel(size: int = 5, sigma: float = 3.0) -> np.ndarray:
    """The discriminator's blur: scipy ``gaussian_filter`` of a centred impulse (reflect mode).

    DISAM ``util/util.py:18-24`` filters a ``size x size`` Dirac with ``gaussian_filter(dirac,
    sigma)`` (scipy's default ``mode='reflect'``, ``truncate=4``), so the kernel is the folded,
    truncated Gaussian, not a sampled one; its entries sum to 1.

    Returns:
        ``[size, size]`` float64.
    """
    dirac = np.zeros((size, size))
    dirac[size // 2, size // 2] = 1.0
    return np.asarray(gaussian_filter(dirac, sigma, mode="reflect"), dtype=np.float64)


def luminance(images: torch.Tensor) -> torch.Tensor:
    """``0.299 R + 0.587 G + 0.114 B`` as ``[B, 1, H, W]`` (``networks.py:252``)."""
    return (0.299 * images[:, 0] + 0.587 * images[:, 1] + 0.114 * images[:, 2]).unsqueeze(1)


class _PredictionStack(nn.Sequential):
    """Stages whose outputs after the first each give their last channel as a prediction map."""

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        predictions: list[torch.Tensor] = []
        stages = list(self)
        for i, stage in enumerate(stages):
            out = stage(x)
            if i == 0:
                x = out
                continue
            predictions.append(out[:, -1])
            if i != len(stages) - 1:
                x = out[:, :-1]
        return predictions


def _stack(in_channels: int, ndf: int, layers: int) -> _PredictionStack:
    """One PatchGAN stream (kernel 4, padding 2): ``layers`` stride-2 stages, then 2 stride-1."""
    stages: list[nn.Sequential] = [
        nn.Sequential(nn.Conv2d(in_channels, ndf, 4, stride=2, padding=2), nn.PReLU())
    ]
    mult = 1
    for n in range(1, layers):
        prev, mult = mult, min(2**n, 8)
        stages.append(
            nn.Sequential(
                nn.Conv2d(ndf * prev, ndf * mult + 1, 4, stride=2, padding=2, bias=True),
                _norm(ndf * mult + 1),
                nn.PReLU(),
            )
        )
    prev, mult = mult, min(2**layers, 8)
    stages.append(
        nn.Sequential(
            nn.Conv2d(ndf * prev, ndf * mult, 4, stride=1, padding=2, bias=True),
            _norm(ndf * mult),
            nn.PReLU(),
            nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=2),
        )
    )
    return _PredictionStack(*stages)


class Discriminator(nn.Module):
    """NLayerDiscriminator: a luminance stream and a blurred-RGB stream of PatchGAN stages.

    Args:
        ndf: Width of the first stage (64).
        layers: ``netD_n_layers`` (4): ``layers`` prediction maps per stream.
        in_channels: Image channels (3).
    """

    def __init__(self, ndf: int = 64, layers: int = 4, in_channels: int = 3) -> None:
        super().__init__()
        self.model_gray = _stack(1, ndf, layers)
        self.model_rgb = _stack(in_channels, ndf, layers)
        kernel = torch.from_numpy(blur_kernel()).float()
        self.register_buffer(
            "blur_weight", kernel.expand(in_channels, 1, *kernel.shape).clone(), persistent=False
        )

    def blur(self, images: torch.Tensor) -> torch.Tensor:
        """Depthwise 5x5 Gaussian blur with zero padding 2 (``disam_model.py:61``)."""
        weight = cast(torch.Tensor, self.blur_weight).to(images.dtype)
        return nn.functional.conv2d(images, weight, padding=2, groups=images.shape[1])

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Four ``[B, 2h, w]`` prediction maps: both streams' maps of one scale, stacked on h."""
        gray = self.model_gray(luminance(images))
        rgb = self.model_rgb(self.blur(images))
        return [torch.cat([g, c], dim=1) for g, c in zip(gray, rgb, strict=True)]


def gan_loss(predictions: list[torch.Tensor], real: bool) -> torch.Tensor:
    """LSGAN over the prediction maps: ``sum_i m_i MSE(p_i, target) / (sum m * k)``.

    ``m = 1, 2, ..., k-1, k+1`` (``networks.py:84-107``); with 4 maps the divisor is 44.
    """
    count = len(predictions)
    multipliers = [float(i + 1) for i in range(count)]
    multipliers[-1] += 1.0
    target = 1.0 if real else 0.0
    total = sum(
        m * nn.functional.mse_loss(p, torch.full_like(p, target))
        for m, p in zip(multipliers, predictions, strict=True)
    )
    return total / (sum(multipliers) * count)  # type: ignore[return-value]


def init_weights(module: nn.Module) -> None:
    """ComboGAN init (``networks.py:9-17``): every conv weight ~ N(0, 0.02), bias 0."""
    for sub in module.modules():
        if isinstance(sub, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.normal_(sub.weight, 0.0, 0.02)
            if sub.bias is not None:
                nn.init.zeros_(sub.bias)
