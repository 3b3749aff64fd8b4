"""Training images as normalised tensors, and batched descriptor extraction for mining.

Both transforms resize to the configured size and normalise with the model's
:class:`~vpr_bench.specs.Preprocess`. The training transform may first jitter colours
(:class:`~vpr_bench.train.augment.ColorJitter`, OpenIBL's ``ColorJitter(0.7, 0.7, 0.7, 0.5)``);
the mining ("test") transform never does. Decoded images may be kept in memory as uint8
(``cache=True``) for small training sets.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from vpr_bench.errors import DataError
from vpr_bench.specs import Preprocess
from vpr_bench.train.augment import ColorJitter

__all__ = ["ImageTensors", "training_descriptors"]


class ImageTensors:
    """Loads images by index as ``[3, H, W]`` float32 tensors, normalised for the model.

    Args:
        paths: Image files, in index order.
        preprocess: Mean/std/scale convention of the model.
        size: ``(height, width)`` to resize to, or None to keep the native size (then every
            image of a batch must have the same size).
        cache: Keep decoded images (uint8) in memory.
        workers: Threads decoding a batch (0: the calling thread).
        domains: Each image's domain label (its ``domain``, else its ``condition``; see
            :func:`vpr_bench.eval.domains.image_domains`), for models with one encoder per
            domain; None or a None label means the model's reference domain.
    """

    def __init__(
        self,
        paths: Sequence[Path],
        preprocess: Preprocess,
        size: tuple[int, int] | None,
        cache: bool = False,
        workers: int = 0,
        domains: Sequence[str | None] | None = None,
    ) -> None:
        if domains is not None and len(domains) != len(paths):
            raise ValueError(f"{len(domains)} domain labels for {len(paths)} images")
        self.domains: tuple[str | None, ...] | None = None if domains is None else tuple(domains)
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
        """The normalised ``[3, H, W]`` float32 tensor of image ``index``."""
        return self._normalise(self.load_uint8(index).float())

    def _normalise(self, pixels: torch.Tensor) -> torch.Tensor:
        """``[3, H, W]`` float pixels in 0..255 -> the model's input convention."""
        return (pixels * self._scale - self._mean) / self._std

    def load_uint8(self, index: int) -> torch.Tensor:
        """The decoded, resized ``[3, H, W]`` uint8 tensor of image ``index``."""
        cached = self._store.get(index)
        if cached is not None:
            return cached
        from vpr_bench.data.images import load_uint8

        tensor = load_uint8(self.paths[index], self.size).contiguous()
        if self.cache:
            self._store[index] = tensor
        return tensor

    def batch(
        self,
        indices: Sequence[int],
        jitter: ColorJitter | None = None,
        key: Sequence[int] = (),
    ) -> torch.Tensor:
        """Stack the images of ``indices`` into ``[B, 3, H, W]``.

        Args:
            indices: Image indices.
            jitter: Colour jitter for training batches (None or disabled: none).
            key: Prefix of every image's jitter key (e.g. seed, step, micro-batch); the image
                index completes it, so an image's jitter does not depend on its batch position,
                rank or loading thread.
        """
        ids = [int(i) for i in indices]
        if self.workers > 0 and len(ids) > 1:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(self.workers) as pool:
                raw = list(pool.map(self.load_uint8, ids))
        else:
            raw = [self.load_uint8(i) for i in ids]
        if jitter is not None and jitter.enabled:
            tensors = [
                self._normalise(jitter.apply(r.float() / 255.0, (*key, i)) * 255.0)
                for r, i in zip(raw, ids, strict=True)
            ]
        else:
            tensors = [self._normalise(r.float()) for r in raw]
        shapes = {tuple(t.shape) for t in tensors}
        if len(shapes) > 1:
            raise DataError(
                f"Training images have different sizes {sorted(shapes)}; set trainer.height and "
                "trainer.width to resize them to one size."
            )
        return torch.stack(tensors)


@torch.no_grad()
def training_descriptors(
    model: nn.Module,
    images: ImageTensors,
    indices: Sequence[int],
    *,
    device: torch.device,
    batch_size: int = 32,
) -> torch.Tensor:
    """Descriptors of training images ``images[indices]`` for mining and validation.

    Unlike :func:`vpr_bench.eval.extract.extract_descriptors` (files in, float32 numpy out,
    cached, re-normalised), this reads the trainer's in-memory :class:`ImageTensors` and keeps
    the float32 ``[n, D]`` result on ``device``, where the miner ranks it. It runs in eval mode
    and restores the model's training mode afterwards. A model that declares domains (DISAM)
    gets each image's label from ``images.domains``, one pass per domain as in evaluation.

    Raises:
        UsageError: An image's domain label is not one of the model's domains.
    """
    from vpr_bench.eval.domains import check_domains, domain_runs, model_domains

    known = model_domains(model)
    order = list(indices)
    runs: list[tuple[str | None, list[int]]] = [(None, order)]
    positions: list[int] = []  # the place of each output row in ``order``
    if known:
        labels = [None if images.domains is None else images.domains[i] for i in order]
        check_domains(model, labels)
        runs = []
        for domain, rows in domain_runs(labels, known[0]):
            runs.append((domain, [order[j] for j in rows.tolist()]))
            positions.extend(rows.tolist())
    was_training = model.training
    model.eval()
    parts: list[torch.Tensor] = []
    try:
        for label, run in runs:
            for i in range(0, len(run), batch_size):
                batch = images.batch(run[i : i + batch_size]).to(device)
                out = model(batch) if label is None else model(batch, domain=label)
                parts.append(out.float())
    finally:
        model.train(was_training)
    if not parts:
        dim = int(getattr(model, "descriptor_dim", 0))
        return torch.empty(0, dim, device=device)
    desc = torch.cat(parts)
    if len(runs) == 1:
        return desc
    restored = torch.empty_like(desc)
    restored[torch.as_tensor(positions, device=desc.device)] = desc
    return restored
