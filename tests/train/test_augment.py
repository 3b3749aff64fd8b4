"""Colour jitter: torchvision's ranges, keyed per image, never in the mining transform."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vpr_bench.errors import ConfigError
from vpr_bench.specs import IMAGENET, MATCONVNET
from vpr_bench.train.augment import ColorJitter
from vpr_bench.train.images import ImageTensors

OPENIBL = ColorJitter(0.7, 0.7, 0.7, 0.5)


def _image(seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).random((3, 12, 16), dtype=np.float32))


def test_draws_stay_in_colorjitter_ranges_and_cover_them() -> None:
    draws = [OPENIBL.draw((1, 2, i)) for i in range(400)]
    for name in ("brightness", "contrast", "saturation"):
        values = np.array([getattr(d, name) for d in draws])
        assert values.min() >= 0.3 and values.max() <= 1.7
        assert values.min() < 0.4 and values.max() > 1.6  # the whole range is used
    hues = np.array([d.hue for d in draws])
    assert hues.min() >= -0.5 and hues.max() <= 0.5 and hues.min() < -0.4 and hues.max() > 0.4
    assert {d.order for d in draws} > {(0, 1, 2, 3)}  # the order is random, as ColorJitter's
    assert all(sorted(d.order) == [0, 1, 2, 3] for d in draws)


def test_same_key_same_result_other_key_other_result() -> None:
    image = _image()
    a = OPENIBL.apply(image, (7, 3, 0, 11))
    assert torch.equal(a, OPENIBL.apply(image, (7, 3, 0, 11)))
    assert not torch.allclose(a, OPENIBL.apply(image, (7, 3, 0, 12)))
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0


def test_brightness_only_is_a_clamped_scale() -> None:
    image = _image()
    jitter = ColorJitter(brightness=0.5)
    factor = jitter.draw((5,)).brightness
    expected = (image * factor).clamp(0.0, 1.0)
    torch.testing.assert_close(jitter.apply(image, (5,)), expected)


def test_hue_only_keeps_grey_pixels_and_moves_coloured_ones() -> None:
    jitter = ColorJitter(hue=0.5)
    key = next(k for k in range(100) if abs(jitter.draw((k,)).hue) > 0.2)
    grey = torch.full((3, 4, 4), 0.4)
    torch.testing.assert_close(jitter.apply(grey, (key,)), grey, atol=1e-6, rtol=0)
    red = torch.zeros(3, 4, 4)
    red[0] = 0.9
    assert not torch.allclose(jitter.apply(red, (key,)), red, atol=0.05)


def test_off_returns_the_image_itself() -> None:
    image = _image()
    assert ColorJitter().apply(image, (1,)) is image
    assert not ColorJitter().enabled


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ((0.7, 0.7, 0.7), "takes 4 values"),
        ((0.7, -0.1, 0.7, 0.5), ">= 0 and hue <= 0.5"),
        ((0.7, 0.7, 0.7, 0.6), ">= 0 and hue <= 0.5"),
    ],
)
def test_bad_config_is_a_clear_error(values: tuple[float, ...], message: str) -> None:
    with pytest.raises(ConfigError, match="trainer.color_jitter") as info:
        ColorJitter.from_config(values)
    assert message in str(info.value)


def _write_images(folder: Path, count: int) -> list[Path]:
    rng = np.random.default_rng(3)
    paths = []
    for i in range(count):
        path = folder / f"im{i}.png"
        Image.fromarray(rng.integers(0, 256, (10, 14, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def test_batch_jitter_depends_on_the_image_not_its_position_or_thread(tmp_path: Path) -> None:
    paths = _write_images(tmp_path, 4)
    plain = ImageTensors(paths, IMAGENET, None)
    threaded = ImageTensors(paths, IMAGENET, None, cache=True, workers=2)
    forward = plain.batch([1, 3], OPENIBL, (9, 0, 0))
    backward = threaded.batch([3, 1], OPENIBL, (9, 0, 0))
    assert torch.equal(forward[0], backward[1]) and torch.equal(forward[1], backward[0])
    # Without jitter the training batch is the mining transform, exactly.
    assert torch.equal(plain.batch([1]), plain.load(1)[None])
    assert not torch.allclose(forward[0], plain.load(1))


def test_matconvnet_convention_is_jittered_before_mean_subtraction(tmp_path: Path) -> None:
    paths = _write_images(tmp_path, 1)
    images = ImageTensors(paths, MATCONVNET, None)
    jitter = ColorJitter(brightness=0.5)
    factor = jitter.draw((1, 0)).brightness
    raw = torch.from_numpy(np.asarray(Image.open(paths[0]).convert("RGB"), np.float32))
    raw = raw.permute(2, 0, 1)
    mean = torch.tensor(MATCONVNET.mean)[:, None, None]
    expected = (raw / 255.0 * factor).clamp(0.0, 1.0) * 255.0 - mean
    torch.testing.assert_close(images.batch([0], jitter, (1,))[0], expected, rtol=1e-5, atol=1e-3)
