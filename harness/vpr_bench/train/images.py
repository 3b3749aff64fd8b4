"""Training images as normalised tensors, and batched descriptor extraction for mining.

The training transform and the mining ("test") transform are the same here: resize to the
configured size and normalise with the model's :class:`~vpr_bench.specs.Preprocess`; no jitter
(OpenIBL trains without augmentation). Decoded tensors may be kept in memory
(``cache=True``) for small training sets.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from vpr_bench.errors import DataError
from vpr_bench.specs import Preprocess

__all__ = ["ImageTensors", "extract_descriptors"]


class ImageTensors:
    """Loads images by index as ``[3, H, W]`` float32 tensors, normalised for the model.

    Args:
        paths: Image files, in index order.
        preprocess: Mean/std/scale convention of the model.
        size: ``(height, width)`` to resize to, or None to keep the native size (then every
            image of a batch must have the same size).
        cache: Keep decoded tensors in memory.
        workers: Threads decoding a batch (0: the calling thread).
    """

    def __init__(
        self,
        paths: Sequence[Path],
        preprocess: Preprocess,
        size: tuple[int, int] | None,
        cache: bool = False,
        workers: int = 0,
    ) -> None:
        self.paths = [Path(p) for p in paths]
        self.size = size
        self.cache = cache
        self.workers = workers
        scale = 1.0 if preprocess.scale_255 else 1.0 / 255.0
        self._scale = scale
        self._mean = torch.tensor(preprocess.mean, dtype=torch.float32)[:, None, None]
        self._std = torch.tensor(preprocess.std, dtype=torch.float32)[:, None, None]
        self._store: dict[int, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self.paths)

    def load(self, index: int) -> torch.Tensor:
        """The normalised ``[3, H, W]`` tensor of image ``index``."""
        cached = self._store.get(index)
        if cached is not None:
            return cached
        from PIL import Image

        path = self.paths[index]
        try:
            with Image.open(path) as image:
                rgb = image.convert("RGB")
                if self.size is not None and rgb.size != (self.size[1], self.size[0]):
                    rgb = rgb.resize((self.size[1], self.size[0]), Image.Resampling.BILINEAR)
                array = np.asarray(rgb, dtype=np.float32)
        except (OSError, ValueError) as exc:
            raise DataError(
                f"Cannot read training image {path}: {exc}. Re-create the dataset "
                "(vpr-bench data prepare ...) or fix the file."
            ) from exc
        tensor = (torch.from_numpy(array).permute(2, 0, 1) * self._scale - self._mean) / self._std
        if self.cache:
            self._store[index] = tensor
        return tensor

    def batch(self, indices: Sequence[int]) -> torch.Tensor:
        """Stack the images of ``indices`` into ``[B, 3, H, W]``."""
        if self.workers > 0 and len(indices) > 1:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(self.workers) as pool:
                tensors = list(pool.map(self.load, [int(i) for i in indices]))
        else:
            tensors = [self.load(int(i)) for i in indices]
        shapes = {tuple(t.shape) for t in tensors}
        if len(shapes) > 1:
            raise DataError(
                f"Training images have different sizes {sorted(shapes)}; set trainer.height and "
                "trainer.width to resize them to one size."
            )
        return torch.stack(tensors)


@torch.no_grad()
def extract_descriptors(
    model: nn.Module,
    images: ImageTensors,
    indices: Sequence[int],
    *,
    device: torch.device,
    batch_size: int = 32,
) -> torch.Tensor:
    """Descriptors of ``images[indices]`` in eval mode: float32 ``[n, D]`` on ``device``.

    The model's training mode is restored afterwards.
    """
    was_training = model.training
    model.eval()
    try:
        parts = [
            model(images.batch(indices[i : i + batch_size]).to(device)).float()
            for i in range(0, len(indices), batch_size)
        ]
    finally:
        model.train(was_training)
    if not parts:
        dim = int(getattr(model, "descriptor_dim", 0))
        return torch.empty(0, dim, device=device)
    return torch.cat(parts)
