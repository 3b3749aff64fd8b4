"""The image pipeline: decode (Pillow, RGB), resize by a protocol policy, normalise per method.

* Resize (:class:`~vpr_bench.eval.protocol.ResizePolicy`): ``hard`` to exactly H x W;
  ``shorter`` scales the shorter side to S keeping the aspect ratio (the longer side is
  ``int(S * long / short)``, torchvision's rule); ``native`` keeps the file's size. Bilinear
  with antialiasing (Pillow's ``resize``, which torchvision also uses on PIL images).
* Normalisation (:class:`~vpr_bench.specs.Preprocess`): ``scale_255=False`` scales pixels to
  [0, 1] and applies ``(x - mean) / std`` (ImageNet style); ``scale_255=True`` keeps 0..255 and
  applies ``(x - mean) / std`` with the mean in 0..255 (MatConvNet style, std usually 1).
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
    from vpr_bench.eval.protocol import ResizePolicy
    from vpr_bench.specs import Preprocess

__all__ = [
    "ImageListDataset",
    "batch_plan",
    "load_image",
    "make_loader",
    "normalise",
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


def normalise(image: Image.Image, preprocess: Preprocess) -> torch.Tensor:
    """An RGB PIL image as a float32 ``[3, H, W]`` tensor normalised by ``preprocess``."""
    array = np.asarray(image, dtype=np.float32)
    if not preprocess.scale_255:
        array = array / 255.0
    mean = np.asarray(preprocess.mean, dtype=np.float32)
    std = np.asarray(preprocess.std, dtype=np.float32)
    array = (array - mean) / std
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))


def load_image(path: Path, policy: ResizePolicy, preprocess: Preprocess) -> torch.Tensor:
    """Decode, resize and normalise one image to a float32 ``[3, H, W]`` tensor.

    Raises:
        DataError: The file is missing or unreadable.
    """
    image = open_rgb(Path(path))
    height, width = output_size(image.width, image.height, policy)
    if (height, width) != (image.height, image.width):
        image = image.resize((width, height), Image.Resampling.BILINEAR)
    return normalise(image, preprocess)


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
