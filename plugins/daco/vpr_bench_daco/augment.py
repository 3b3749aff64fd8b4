"""DaCo's training augmentation, reproducible per (seed, step, item, view).

DaCo utils.py:16-23 applies, independently to each view: RandomResizedCrop(256, scale
(0.2, 1.0)) - ColorJitter(0.4, 0.4, 0.4, 0.1) with p 0.8 - RandomGrayscale p 0.2 -
RandomHorizontalFlip p 0.5 - ToTensor - Normalize (the model normalises here, see
``model.normalizer``). torchvision draws from the global RNG, so a view would depend on the
worker and on what was drawn before; here every view's choices come from a generator keyed by
``(seed, step, item, view)``, so a resumed run augments exactly as an uninterrupted one. The
distributions are torchvision's (RandomResizedCrop.get_params: ten tries of a uniform area
fraction and a log-uniform aspect ratio, then the central crop).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from vpr_bench.errors import ConfigError
from vpr_bench.train import ColorJitter

__all__ = ["ViewAugment", "ViewDraw"]


@dataclass(frozen=True)
class ViewDraw:
    """The random choices of one view.

    Attributes:
        box: ``(top, left, height, width)`` of the crop in the source image.
        jitter: Whether the colour jitter applies.
        gray: Whether the view turns grey.
        flip: Whether the view is mirrored.
    """

    box: tuple[int, int, int, int]
    jitter: bool
    gray: bool
    flip: bool


@dataclass(frozen=True)
class ViewAugment:
    """The augmentation of one view (defaults: DaCo's).

    Attributes:
        size: Height of the output crop (256).
        width: Its width (0: ``size``, a square crop as DaCo's).
        scale: Range of the crop's area fraction.
        ratio: Range of the crop's aspect ratio (width / height).
        jitter: ``(brightness, contrast, saturation, hue)``.
        jitter_p: Probability of the colour jitter.
        gray_p: Probability of grey.
        flip_p: Probability of a horizontal flip.
    """

    size: int = 256
    width: int = 0
    scale: tuple[float, float] = (0.2, 1.0)
    ratio: tuple[float, float] = (3.0 / 4.0, 4.0 / 3.0)
    jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1)
    jitter_p: float = 0.8
    gray_p: float = 0.2
    flip_p: float = 0.5

    def __post_init__(self) -> None:
        if self.size < 1 or self.width < 0:
            raise ConfigError(
                f"trainer.crop must be >= 1 and trainer.crop_width >= 0, got {self.size}, "
                f"{self.width}."
            )
        if not 0.0 < self.scale[0] <= self.scale[1] <= 1.0:
            raise ConfigError(f"trainer.crop_scale must be 0 < min <= max <= 1, got {self.scale}.")
        for name, p in (("jitter_p", self.jitter_p), ("gray_p", self.gray_p)):
            if not 0.0 <= p <= 1.0:
                raise ConfigError(f"trainer.{name} must be in [0, 1], got {p}.")
        ColorJitter.from_config(self.jitter, "trainer.view_jitter")

    def draw(self, height: int, width: int, key: Sequence[int]) -> ViewDraw:
        """The choices for a ``height`` x ``width`` source and ``key`` (non-negative ints)."""
        rng = np.random.default_rng([int(k) for k in key])
        area = height * width
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        box: tuple[int, int, int, int] | None = None
        for _ in range(10):
            target = area * rng.uniform(self.scale[0], self.scale[1])
            aspect = math.exp(rng.uniform(*log_ratio))
            w = round(math.sqrt(target * aspect))
            h = round(math.sqrt(target / aspect))
            if 0 < w <= width and 0 < h <= height:
                top = int(rng.integers(0, height - h + 1))
                left = int(rng.integers(0, width - w + 1))
                box = (top, left, h, w)
                break
        if box is None:  # torchvision's fallback: the central crop within the ratio range
            in_ratio = width / height
            if in_ratio < self.ratio[0]:
                w, h = width, round(width / self.ratio[0])
            elif in_ratio > self.ratio[1]:
                h, w = height, round(height * self.ratio[1])
            else:
                w, h = width, height
            box = ((height - h) // 2, (width - w) // 2, h, w)
        jitter = bool(rng.random() < self.jitter_p)
        gray = bool(rng.random() < self.gray_p)
        flip = bool(rng.random() < self.flip_p)
        return ViewDraw(box, jitter, gray, flip)

    def apply(self, image: torch.Tensor, key: Sequence[int]) -> torch.Tensor:
        """One view of a ``[3, H, W]`` uint8 image: ``[3, size, width]`` float in [0, 1]."""
        from torchvision.transforms.v2 import functional as tvf

        choice = self.draw(int(image.shape[-2]), int(image.shape[-1]), key)
        top, left, h, w = choice.box
        view: torch.Tensor = tvf.resized_crop(
            image.float() / 255.0,
            top,
            left,
            h,
            w,
            [self.size, self.width or self.size],
            antialias=True,
        ).clamp(0.0, 1.0)
        if choice.jitter:
            view = ColorJitter.from_config(self.jitter).apply(view, (*key, 1))
        if choice.gray:
            view = tvf.rgb_to_grayscale(view, num_output_channels=3)
        if choice.flip:
            view = tvf.horizontal_flip(view)
        return view.contiguous()
