"""The image pipeline: decode (RGB), resize by a protocol policy, normalise per method.

* Decode: ``torchvision.io`` (libjpeg-turbo / libpng; JPEG, PNG, WebP, GIF) straight into a
  uint8 tensor, Pillow for any other format and for every error message. Both give the same
  pixels (checked on the real corridor JPEGs and on L, P, RGBA, CMYK files in the tests);
  torchvision is faster and skips a PIL-to-numpy copy (``benchmarks/test_decode.py``).
* Resize (:class:`~vpr_bench.protocol.ResizePolicy`): ``hard`` to exactly H x W;
  ``shorter`` scales the shorter side to S keeping the aspect ratio (the longer side is
  ``int(S * long / short)``, torchvision's rule); ``native`` keeps the file's size. Bilinear
  with antialiasing by Pillow's ``resize``, which is what the original implementations ran
  (torchvision's ``Resize`` on PIL images); torch's own antialiased resize is faster but
  differs from it by one grey level on some pixels, so it is not used.
* Normalisation (:class:`~vpr_bench.specs.Preprocess`): ``scale_255=False`` divides pixels by
  255 and applies ``(x - mean) / std`` (ImageNet style, as torchvision's ``ToTensor`` and
  ``Normalize``); ``scale_255=True`` keeps 0..255 and applies ``(x - mean) / std`` with the mean
  in 0..255 (MatConvNet style, std usually 1). Done in torch on the uint8 tensor.
* Batching: images of one batch must share a size. Under ``hard`` every image does; otherwise
  :func:`make_loader` reads each file's header (no decode) and batches images of equal output
  size together (buckets), yielding the dataset indices with each batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image

from vpr_bench.errors import DataError

if TYPE_CHECKING:
    from vpr_bench.protocol import ResizePolicy
    from vpr_bench.specs import Preprocess

__all__ = [
    "ImageListDataset",
    "batch_plan",
    "decode_uint8",
    "load_image",
    "load_uint8",
    "make_loader",
    "normalise_uint8",
    "open_rgb",
    "output_size",
]

_DECODE_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


def output_size(width: int, height: int, policy: ResizePolicy) -> tuple[int, int]:
    """The ``(height, width)`` an image of ``width`` x ``height`` gets under ``policy``."""
    if policy.kind == "hard":
        assert policy.height is not None and policy.width is not None
        return policy.height, policy.width
    if policy.kind == "shorter":
        assert policy.shorter is not None
        short, long = min(width, height), max(width, height)
        new_long = int(policy.shorter * long / short)
        if width <= height:
            return new_long, policy.shorter
        return policy.shorter, new_long
    return height, width


def open_rgb(path: Path) -> Image.Image:
    """Decode ``path`` as an RGB image.

    Raises:
        DataError: The file is missing, truncated or not an image (the message names it).
    """
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except FileNotFoundError:
        raise DataError(
            f"Image {path} does not exist; run 'vpr-bench data check' on the dataset to list "
            "every missing file."
        ) from None
    except _DECODE_ERRORS as exc:
        raise DataError(
            f"Cannot decode image {path} ({type(exc).__name__}: {exc}); the file is truncated "
            "or not an image. Download or extract it again."
        ) from exc


def _image_size(path: Path) -> tuple[int, int]:
    try:
        with Image.open(path) as image:
            return image.size
    except FileNotFoundError:
        raise DataError(f"Image {path} does not exist.") from None
    except _DECODE_ERRORS as exc:
        raise DataError(f"Cannot read the header of image {path} ({exc}).") from exc


def _pil_to_uint8(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1)


def decode_uint8(path: Path) -> torch.Tensor:
    """Decode ``path`` as an RGB ``[3, H, W]`` uint8 tensor (torchvision.io, else Pillow).

    Raises:
        DataError: The file is missing, truncated or not an image (the message names it).
    """
    from torchvision.io import ImageReadMode, decode_image, read_file

    pixels: torch.Tensor | None
    try:
        pixels = decode_image(read_file(str(path)), mode=ImageReadMode.RGB)
    except RuntimeError:  # another format, or a broken file: Pillow decides and explains
        pixels = None
    if pixels is None or pixels.dtype != torch.uint8 or pixels.ndim != 3:
        return _pil_to_uint8(open_rgb(Path(path)))  # e.g. BMP, TIFF, 16-bit PNG, animated GIF
    return pixels


def load_uint8(path: Path, size: tuple[int, int] | None) -> torch.Tensor:
    """Decode and resize one image: RGB ``[3, H, W]`` uint8 of ``size`` (None: native size).

    Without a resize the file goes straight to a tensor (:func:`decode_uint8`); with one,
    Pillow decodes and resizes it (the same pixels, and no tensor-to-PIL round trip).

    Raises:
        DataError: The file is missing or unreadable.
    """
    return _load(Path(path), size, None if size is None else _image_size(Path(path)))


_RESAMPLING = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}


def _load(
    path: Path,
    size: tuple[int, int] | None,
    native: tuple[int, int] | None,
    interpolation: str = "bilinear",
) -> torch.Tensor:
    """:func:`load_uint8` given the file's ``(width, height)`` when a size is asked for."""
    if size is None or native == (size[1], size[0]):
        return decode_uint8(path)
    image = open_rgb(path).resize((size[1], size[0]), _RESAMPLING[interpolation])
    return _pil_to_uint8(image)


def normalise_uint8(pixels: torch.Tensor, preprocess: Preprocess) -> torch.Tensor:
    """A uint8 ``[3, H, W]`` image as a float32 tensor normalised by ``preprocess``."""
    values = pixels.to(torch.float32, memory_format=torch.contiguous_format)
    if not preprocess.scale_255:
        values.div_(255.0)
    values.sub_(torch.tensor(preprocess.mean, dtype=torch.float32)[:, None, None])
    return values.div_(torch.tensor(preprocess.std, dtype=torch.float32)[:, None, None])


def load_image(path: Path, policy: ResizePolicy, preprocess: Preprocess) -> torch.Tensor:
    """Decode, resize and normalise one image to a float32 ``[3, H, W]`` tensor.

    Raises:
        DataError: The file is missing or unreadable.
    """
    if policy.kind == "native":
        return normalise_uint8(decode_uint8(Path(path)), preprocess)
    native = _image_size(Path(path))
    size = output_size(native[0], native[1], policy)
    return normalise_uint8(_load(Path(path), size, native, policy.interpolation), preprocess)


class ImageListDataset(torch.utils.data.Dataset[tuple[int, torch.Tensor]]):
    """A torch Dataset over image paths; item ``i`` is ``(i, [3, H, W] tensor)``.

    Args:
        paths: Image files, in dataset index order.
        policy: The resize policy.
        preprocess: The method's normalisation.
    """

    def __init__(self, paths: Sequence[Path], policy: ResizePolicy, preprocess: Preprocess) -> None:
        self.paths = [Path(p) for p in paths]
        self.policy = policy
        self.preprocess = preprocess

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[int, torch.Tensor]:
        return index, load_image(self.paths[index], self.policy, self.preprocess)


def batch_plan(paths: Sequence[Path], policy: ResizePolicy, batch_size: int) -> list[list[int]]:
    """Index batches whose images share one output size (order kept within a size).

    Under a ``hard`` policy this is plain consecutive chunks and no file is opened; otherwise
    each file's header is read to know its size.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    if policy.kind == "hard":
        return [
            list(range(i, min(i + batch_size, len(paths))))
            for i in range(0, len(paths), batch_size)
        ]
    buckets: dict[tuple[int, int], list[int]] = {}
    for index, path in enumerate(paths):
        width, height = _image_size(Path(path))
        buckets.setdefault(output_size(width, height, policy), []).append(index)
    plan = []
    for members in buckets.values():
        plan += [members[i : i + batch_size] for i in range(0, len(members), batch_size)]
    return plan


def make_loader(
    paths: Sequence[Path],
    policy: ResizePolicy,
    preprocess: Preprocess,
    batch_size: int,
    num_workers: int = 0,
    device: str | torch.device | None = None,
) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
    """A loader yielding ``(indices [B] int64, images [B, 3, H, W] float32)``.

    Batches never mix image sizes (see :func:`batch_plan`), so variable-size queries
    (Tokyo 24/7) batch correctly. Memory is pinned when ``device`` is CUDA.

    Args:
        paths: Image files in dataset index order.
        policy: The resize policy of the protocol.
        preprocess: The method's normalisation.
        batch_size: At most this many images per batch.
        num_workers: DataLoader worker processes (0 decodes in the calling process).
        device: Where the batches will go; only used to decide on pinned memory.
    """
    dataset = ImageListDataset(paths, policy, preprocess)
    plan = batch_plan(dataset.paths, policy, batch_size)
    pin = torch.device(device).type == "cuda" if device is not None else False
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_sampler=plan,
        num_workers=num_workers,
        pin_memory=pin,
        persistent_workers=False,
    )
    return _Loader(loader, len(plan))


class _Loader:
    """An iterable over the DataLoader that knows its number of batches."""

    def __init__(self, loader: torch.utils.data.DataLoader[tuple[int, torch.Tensor]], n: int):
        self._loader = loader
        self._n = n

    def __len__(self) -> int:
        return self._n

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        yield from self._loader
