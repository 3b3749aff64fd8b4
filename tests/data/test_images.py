"""Image pipeline: resize policies, both normalisations, size buckets, unreadable files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from PIL import Image

from vpr_bench.data.images import (
    ImageListDataset,
    decode_uint8,
    load_image,
    make_loader,
    output_size,
)
from vpr_bench.errors import DataError
from vpr_bench.protocol import ResizePolicy
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


def _pillow_reference(
    path: Path,
    size: tuple[int, int] | None,
    scale_255: bool,
    resample: Image.Resampling = Image.Resampling.BILINEAR,
) -> torch.Tensor:
    """What the original implementations compute: Pillow decode and resize, then
    ToTensor/Normalize arithmetic (divide by 255, subtract the mean, divide by the std)."""
    import numpy as np

    with Image.open(path) as image:
        rgb = image.convert("RGB")
    if size is not None and size != (rgb.height, rgb.width):
        rgb = rgb.resize((size[1], size[0]), resample)
    array = np.asarray(rgb, dtype=np.float32)
    preprocess = MATCONVNET if scale_255 else IMAGENET
    if not scale_255:
        array = array / 255.0
    array = (array - np.float32(preprocess.mean)) / np.float32(preprocess.std)
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))


@pytest.fixture(scope="module")
def odd_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """One image in every mode and container the readers meet (and two torchvision skips)."""
    import numpy as np

    folder = tmp_path_factory.mktemp("modes")
    noise = np.random.default_rng(0).integers(0, 256, (41, 57, 3), dtype=np.uint8)
    base = Image.fromarray(noise).resize((114, 82), Image.Resampling.BICUBIC)
    files = []
    for mode, suffix in [
        ("L", "jpg"), ("CMYK", "jpg"), ("L", "png"), ("LA", "png"), ("P", "png"),
        ("RGBA", "png"), ("RGB", "bmp"), ("RGB", "tiff"),
    ]:  # fmt: skip
        files.append(folder / f"{mode}.{suffix}")
        base.convert(mode).save(files[-1])
    files.append(folder / "16bit.png")
    Image.fromarray(noise[:, :, 0].astype(np.uint16) * 257).save(files[-1])
    return files


def test_decode_gives_pillows_pixels_on_real_and_odd_files(
    shared_data: Path, odd_files: list[Path]
) -> None:
    import numpy as np

    corridor = sorted((shared_data / "vpr_bench" / "datasets" / "corridor").rglob("*.jpg"))
    assert len(corridor) == 222
    for path in [*corridor, *odd_files]:
        with Image.open(path) as image:
            expected = np.asarray(image.convert("RGB")).transpose(2, 0, 1)
        assert np.array_equal(decode_uint8(path).numpy(), expected), path.name


@pytest.mark.parametrize(
    "policy",
    [
        ResizePolicy(),
        ResizePolicy.hard(480, 640),
        ResizePolicy.shorter_side(100),
        ResizePolicy.hard(256, 256, interpolation="bicubic"),
    ],
    ids=["native", "hard-480x640", "shorter-100", "hard-256-bicubic"],
)
@pytest.mark.parametrize("scale_255", [False, True], ids=["imagenet", "matconvnet"])
def test_load_image_equals_the_pillow_pipeline_bit_for_bit(
    shared_data: Path, odd_files: list[Path], policy: ResizePolicy, scale_255: bool
) -> None:
    corridor = sorted((shared_data / "vpr_bench" / "datasets" / "corridor").rglob("*.jpg"))
    for path in [*corridor[::20], *odd_files]:
        with Image.open(path) as image:
            size = output_size(image.width, image.height, policy)
        ours = load_image(path, policy, MATCONVNET if scale_255 else IMAGENET)
        resample = (
            Image.Resampling.BICUBIC
            if policy.interpolation == "bicubic"
            else Image.Resampling.BILINEAR
        )
        assert torch.equal(ours, _pillow_reference(path, size, scale_255, resample)), path.name


def test_truncated_file_is_named(tmp_path: Path, jpeg_writer: Callable[..., Path]) -> None:
    whole = jpeg_writer(tmp_path / "whole.jpg", size=(64, 48))
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(whole.read_bytes()[:200])
    with pytest.raises(DataError, match=r"Cannot decode image .*cut\.jpg .*truncated"):
        decode_uint8(cut)
