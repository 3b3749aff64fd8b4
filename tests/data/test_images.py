"""Image pipeline: resize policies, both normalisations, size buckets, unreadable files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from PIL import Image

from vpr_bench.data.images import ImageListDataset, load_image, make_loader, output_size
from vpr_bench.errors import DataError
from vpr_bench.eval.protocol import ResizePolicy
from vpr_bench.specs import IMAGENET, MATCONVNET


def test_output_sizes() -> None:
    assert output_size(640, 480, ResizePolicy.hard(480, 640)) == (480, 640)
    assert output_size(640, 480, ResizePolicy.shorter_side(480)) == (480, 640)
    assert output_size(480, 640, ResizePolicy.shorter_side(640)) == (853, 640)  # int(640*640/480)
    assert output_size(500, 333, ResizePolicy.shorter_side(100)) == (100, 150)  # 150.15 truncated
    assert output_size(37, 21, ResizePolicy()) == (21, 37)


def test_normalisations(tmp_path: Path) -> None:
    path = tmp_path / "c.png"
    Image.new("RGB", (4, 2), (255, 0, 128)).save(path)
    x = load_image(path, ResizePolicy(), IMAGENET)
    assert x.shape == (3, 2, 4) and x.dtype == torch.float32
    expected = [(1.0 - 0.485) / 0.229, (0.0 - 0.456) / 0.224, (128 / 255 - 0.406) / 0.225]
    assert torch.allclose(x[:, 0, 0], torch.tensor(expected), atol=1e-5)
    y = load_image(path, ResizePolicy(), MATCONVNET)
    assert torch.allclose(
        y[:, 1, 3], torch.tensor([255 - 123.68, -116.779, 128 - 103.939]), atol=1e-4
    )


def test_resize_matches_torchvision_on_pil(tmp_path: Path) -> None:
    import torchvision.transforms.functional as TF

    path = tmp_path / "g.png"
    Image.effect_mandelbrot((96, 64), (-2.0, -1.0, 1.0, 1.0), 50).convert("RGB").save(path)
    x = load_image(
        path, ResizePolicy.shorter_side(40), IMAGENET.__class__(mean=(0, 0, 0), std=(1, 1, 1))
    )
    ref = TF.to_tensor(TF.resize(Image.open(path).convert("RGB"), 40))
    assert x.shape == ref.shape == (3, 40, 60)
    assert torch.allclose(x, ref, atol=1e-6)


def test_unreadable_and_missing_images(tmp_path: Path) -> None:
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(DataError, match=r"Cannot decode image .*broken\.jpg"):
        load_image(bad, ResizePolicy(), IMAGENET)
    with pytest.raises(DataError, match=r"Image .*absent\.jpg does not exist"):
        ImageListDataset([tmp_path / "absent.jpg"], ResizePolicy(), IMAGENET)[0]


def test_loader_buckets_variable_sizes(tmp_path: Path, jpeg_writer: Callable[..., Path]) -> None:
    sizes = [(16, 12), (12, 16), (16, 12), (20, 20), (16, 12)]
    paths = [jpeg_writer(tmp_path / f"{i}.jpg", size=s, colour=i) for i, s in enumerate(sizes)]
    loader = make_loader(paths, ResizePolicy.shorter_side(12), IMAGENET, batch_size=2)
    seen = []
    for indices, batch in loader:
        assert batch.shape[0] == len(indices) <= 2
        for i, image in zip(indices.tolist(), batch, strict=True):
            w, h = sizes[i]
            assert image.shape[1:] == output_size(w, h, ResizePolicy.shorter_side(12))
            assert torch.equal(image, load_image(paths[i], ResizePolicy.shorter_side(12), IMAGENET))
        seen += indices.tolist()
    assert sorted(seen) == list(range(5)) and len(loader) == 4  # type: ignore[arg-type]
    hard = list(make_loader(paths, ResizePolicy.hard(8, 8), IMAGENET, batch_size=4, device="cpu"))
    assert [b.shape for _, b in hard] == [(4, 3, 8, 8), (1, 3, 8, 8)]
    assert [i.tolist() for i, _ in hard] == [[0, 1, 2, 3], [4]]
