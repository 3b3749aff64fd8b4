"""Training-time colour jitter, reproducible per image and independent of ranks and workers.

OpenIBL trains NetVLAD/SARE/SFRS with ``ColorJitter(brightness=0.7, contrast=0.7,
saturation=0.7, hue=0.5)`` applied independently to every image of a tuple (methods.md Part A,
1.2). torchvision's transform draws its factors from the global torch RNG, so the result would
depend on how many images were drawn before, on the rank that loads an image and on thread
order. Here every image's factors come from its own generator keyed by ``(seed, step,
micro-batch, image index)``: a resumed run, a 2-process run and a threaded loader all jitter an
image exactly as one uninterrupted process does. The factor ranges and the random order of the
four adjustments are ColorJitter's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from vpr_bench.errors import ConfigError

__all__ = ["ColorJitter", "JitterDraw"]


@dataclass(frozen=True)
class JitterDraw:
    """The random choices for one image.

    Attributes:
        order: The four adjustments' order (0 brightness, 1 contrast, 2 saturation, 3 hue).
        brightness: Brightness factor (1 = unchanged).
        contrast: Contrast factor.
        saturation: Saturation factor.
        hue: Hue shift in turns, in [-0.5, 0.5].
    """

    order: tuple[int, ...]
    brightness: float
    contrast: float
    saturation: float
    hue: float


@dataclass(frozen=True)
class ColorJitter:
    """Colour jitter with torchvision ``ColorJitter``'s parameterisation.

    Attributes:
        brightness: Factor drawn from ``[max(0, 1 - b), 1 + b]``.
        contrast: Factor drawn from ``[max(0, 1 - c), 1 + c]``.
        saturation: Factor drawn from ``[max(0, 1 - s), 1 + s]``.
        hue: Shift drawn from ``[-h, h]``; at most 0.5.
    """

    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0
    hue: float = 0.0

    @classmethod
    def from_config(
        cls, values: Sequence[float], name: str = "trainer.color_jitter"
    ) -> ColorJitter:
        """Build from the config's ``(brightness, contrast, saturation, hue)`` tuple.

        Raises:
            ConfigError: Not four values, a negative value, or hue above 0.5.
        """
        if len(values) != 4:
            raise ConfigError(
                f"{name} takes 4 values (brightness, contrast, saturation, hue), got "
                f"{len(values)}: {tuple(values)}. OpenIBL's is (0.7, 0.7, 0.7, 0.5); "
                "(0, 0, 0, 0) turns jitter off."
            )
        b, c, s, h = (float(v) for v in values)
        if min(b, c, s, h) < 0 or h > 0.5:
            raise ConfigError(f"{name} = {tuple(values)}: every value must be >= 0 and hue <= 0.5.")
        return cls(b, c, s, h)

    @property
    def enabled(self) -> bool:
        """Whether any adjustment is on."""
        return any((self.brightness, self.contrast, self.saturation, self.hue))

    def draw(self, key: Sequence[int]) -> JitterDraw:
        """The choices for the image identified by ``key`` (non-negative integers)."""
        rng = np.random.default_rng([int(k) for k in key])
        order = tuple(int(i) for i in rng.permutation(4))

        def factor(strength: float) -> float:
            return float(rng.uniform(max(0.0, 1.0 - strength), 1.0 + strength))

        return JitterDraw(
            order,
            factor(self.brightness),
            factor(self.contrast),
            factor(self.saturation),
            float(rng.uniform(-self.hue, self.hue)),
        )

    def apply(self, image: torch.Tensor, key: Sequence[int]) -> torch.Tensor:
        """Jitter one ``[3, H, W]`` float image with values in [0, 1].

        Args:
            image: The image (not normalised).
            key: Identifies the image and the moment, e.g. ``(seed, step, micro, index)``.

        Returns:
            The jittered image, clamped to [0, 1].
        """
        if not self.enabled:
            return image
        from torchvision.transforms.v2 import functional as tvf

        choice = self.draw(key)
        for op in choice.order:
            if op == 0 and self.brightness:
                image = tvf.adjust_brightness(image, choice.brightness)
            elif op == 1 and self.contrast:
                image = tvf.adjust_contrast(image, choice.contrast)
            elif op == 2 and self.saturation:
                image = tvf.adjust_saturation(image, choice.saturation)
            elif op == 3 and self.hue:
                image = tvf.adjust_hue(image, choice.hue)
        return image
