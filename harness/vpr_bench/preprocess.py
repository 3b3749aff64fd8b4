"""A method's input convention (normalisation and image sizes), recorded with every result."""

from __future__ import annotations

from dataclasses import dataclass, field

from vpr_bench.protocol import ResizePolicy

__all__ = ["IMAGENET", "MATCONVNET", "Preprocess"]


@dataclass(frozen=True)
class Preprocess:
    """A method's input convention, recorded with every result.

    Attributes:
        mean: Per-channel RGB mean subtracted after scaling.
        std: Per-channel RGB std divided by after subtracting the mean.
        scale_255: True when pixels stay in 0..255 (MatConvNet style: mean in 0..255, std 1);
            False when pixels are scaled to [0, 1] first (torchvision/ImageNet style).
        train_size: (height, width) of training images, or None for native size.
        test_policy: How to resize at test time where the protocol leaves it to the method.
    """

    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    scale_255: bool = False
    train_size: tuple[int, int] | None = None
    test_policy: ResizePolicy = field(default_factory=ResizePolicy)

    def __post_init__(self) -> None:
        if len(self.mean) != 3 or len(self.std) != 3:
            raise ValueError("Preprocess mean and std need exactly 3 values (R, G, B).")
        if any(s <= 0 for s in self.std):
            raise ValueError(f"Preprocess std must be positive, got {self.std}.")


IMAGENET = Preprocess()
"""torchvision's ImageNet convention: [0, 1] pixels, ImageNet mean and std."""

MATCONVNET = Preprocess(mean=(123.68, 116.779, 103.939), std=(1.0, 1.0, 1.0), scale_255=True)
"""The MatConvNet VGG16 convention: 0..255 pixels minus the per-channel mean, no division."""
