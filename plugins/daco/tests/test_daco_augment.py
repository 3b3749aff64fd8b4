"""DaCo's view augmentation: keyed draws, torchvision's distributions, the batched twin."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vpr_bench.errors import ConfigError
from vpr_bench_daco.augment import ViewAugment
from vpr_bench_daco.augment_batch import augment_batch


def _images(n: int, height: int = 48, width: int = 64) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    smooth = torch.rand(n, 3, height // 8, width // 8, generator=generator)
    up = torch.nn.functional.interpolate(smooth, size=(height, width), mode="bilinear")
    return (up * 255).round().to(torch.uint8)


def test_a_view_depends_only_on_its_key() -> None:
    augment = ViewAugment(size=32)
    image = _images(1)[0]
    first = augment.apply(image, (1, 5, 3, 0))
    assert first.shape == (3, 32, 32) and 0.0 <= float(first.min()) <= float(first.max()) <= 1.0
    assert torch.equal(first, augment.apply(image, (1, 5, 3, 0)))
    assert not torch.equal(first, augment.apply(image, (1, 5, 3, 1)))
    assert ViewAugment(size=24, width=32).apply(image, (0,)).shape == (3, 24, 32)


def test_the_draws_follow_torchvisions_distributions() -> None:
    augment = ViewAugment()
    draws = [augment.draw(120, 160, (0, k)) for k in range(4000)]
    area = np.array([d.box[2] * d.box[3] / (120 * 160) for d in draws])
    ratio = np.array([d.box[3] / d.box[2] for d in draws])
    from torchvision.transforms import RandomResizedCrop

    torch.manual_seed(0)
    image = torch.zeros(3, 120, 160)
    theirs = [RandomResizedCrop.get_params(image, [0.2, 1.0], [3 / 4, 4 / 3]) for _ in range(4000)]
    their_area = np.array([h * w / (120 * 160) for _, _, h, w in theirs])
    their_ratio = np.array([w / h for _, _, h, w in theirs])
    assert area.min() >= 0.19 and area.max() <= 1.0
    assert abs(area.mean() - their_area.mean()) < 0.015
    assert abs(area.std() - their_area.std()) < 0.015
    assert abs(np.log(ratio).mean() - np.log(their_ratio).mean()) < 0.02
    assert ratio.min() >= 0.7 and ratio.max() <= 1.4
    assert abs(np.mean([d.jitter for d in draws]) - 0.8) < 0.03
    assert abs(np.mean([d.gray for d in draws]) - 0.2) < 0.03
    assert abs(np.mean([d.flip for d in draws]) - 0.5) < 0.03


def test_bad_augmentation_options_fail() -> None:
    with pytest.raises(ConfigError, match="crop_scale"):
        ViewAugment(scale=(0.0, 1.0))
    with pytest.raises(ConfigError, match="view_jitter"):
        ViewAugment(jitter=(0.4, 0.4, 0.4, 0.9))


def test_the_batched_twin_matches_per_image_views() -> None:
    """Whole-image crops (no resampling): colour, grey and flip agree to float precision."""
    images = _images(24, 30, 40)
    full = ViewAugment(size=30, width=40, scale=(1.0, 1.0), ratio=(4 / 3, 4 / 3))
    keys = [(7, 2, i, 1) for i in range(24)]
    batched = augment_batch(full, images, keys)
    single = torch.stack([full.apply(img, key) for img, key in zip(images, keys, strict=True)])
    torch.testing.assert_close(batched, single, atol=2e-5, rtol=0)
    draws = [full.draw(30, 40, k) for k in keys]
    assert (
        any(d.jitter for d in draws) and any(d.gray for d in draws) and any(d.flip for d in draws)
    )


def test_the_batched_twin_resizes_like_an_antialiased_resize() -> None:
    images = _images(16)
    augment = ViewAugment(size=24)
    keys = [(1, 0, i, 0) for i in range(16)]
    batched = augment_batch(augment, images, keys)
    single = torch.stack([augment.apply(img, key) for img, key in zip(images, keys, strict=True)])
    assert batched.shape == single.shape == (16, 3, 24, 24)
    assert float((batched - single).abs().mean()) < 0.02
