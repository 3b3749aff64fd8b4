"""Descriptor extraction: images -> L2-normalised float32 ``[N, D]`` descriptors.

The model runs in eval mode under ``torch.inference_mode``, in float32 by default (protocol
parity); ``precision="bf16"``/``"fp16"`` autocasts on CUDA (bf16 also on CPU) and is recorded.
On CUDA the model and batches use channels_last and pinned host memory. Images come from
:func:`vpr_bench.data.images.make_loader`, whose batches never mix output sizes (so a
"shorter side" query policy batches correctly). A CUDA out-of-memory error halves the batch
and continues. Every output row is re-normalised in float32 (as OpenIBL does).

Under ``torchrun`` (``WORLD_SIZE`` > 1) :func:`extract_with_stats` hands over to
:mod:`vpr_bench.eval.distributed`, which shards the images over ranks.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from vpr_bench.errors import UsageError, VprBenchError
from vpr_bench.protocol import ResizePolicy
from vpr_bench.specs import Preprocess

if TYPE_CHECKING:
    import torch
    from torch import nn

    from vpr_bench.eval.cache import DescriptorCache

__all__ = [
    "PRECISIONS",
    "Extraction",
    "Precision",
    "compute_descriptors",
    "descriptor_dim",
    "extract_descriptors",
    "extract_with_stats",
    "store",
]

log = logging.getLogger(__name__)

Precision = Literal["fp32", "bf16", "fp16"]
PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16")

Sink = Callable[[np.ndarray, np.ndarray], None]
"""``sink(indices, rows)`` receives float32 descriptor rows for the given image indices."""


@dataclass(frozen=True)
class Extraction:
    """Descriptors and how they were made.

    Attributes:
        descriptors: ``[N, D]`` float32, L2-normalised (memory-mapped when read from the
            cache). On ranks other than 0 of a distributed run: an empty ``[0, D]`` array.
        seconds: Wall time of the extraction (0 when read from the cache).
        images_per_s: Throughput (0 when read from the cache).
        from_cache: True when the descriptors came from the cache.
    """

    descriptors: np.ndarray
    seconds: float
    images_per_s: float
    from_cache: bool


def descriptor_dim(model: nn.Module) -> int:
    """The model's declared ``descriptor_dim``.

    Raises:
        UsageError: The model does not declare a positive integer ``descriptor_dim``.
    """
    dim = getattr(model, "descriptor_dim", None)
    if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
        raise UsageError(
            f"Model {type(model).__name__} has no positive integer descriptor_dim attribute "
            f"(got {dim!r}); every vpr-bench model must declare its descriptor dimension."
        )
    return dim


def check_precision(precision: str, device: torch.device) -> None:
    """Reject unknown precisions and fp16 on CPU with a message that says what works."""
    if precision not in PRECISIONS:
        raise UsageError(f"Unknown precision {precision!r}: use one of {', '.join(PRECISIONS)}.")
    if precision == "fp16" and device.type != "cuda":
        raise UsageError(
            f"Precision fp16 needs a CUDA device (got {device}); use fp32 (protocol parity) or "
            "bf16 on CPU."
        )


def _autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager[Any]:
    import torch

    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


class _AdaptiveForward:
    """Runs the model on a batch in chunks; a CUDA out-of-memory error halves the chunk."""

    def __init__(self, model: nn.Module, device: torch.device, precision: str) -> None:
        self.model = model
        self.device = device
        self.precision = precision
        self.max_chunk: int | None = None

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        import torch
        import torch.nn.functional as F

        outputs: list[torch.Tensor] = []
        start = 0
        while start < batch.shape[0]:
            chunk = self.max_chunk or batch.shape[0]
            part = batch[start : start + chunk]
            try:
                with _autocast(self.precision, self.device):
                    out = self.model(part)
            except torch.OutOfMemoryError:
                if chunk <= 1:
                    raise VprBenchError(
                        f"Out of memory on {self.device} even with one image per batch; use a "
                        "smaller resize policy, bf16 precision, or another device."
                    ) from None
                self.max_chunk = max(1, (chunk + 1) // 2)
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                log.warning("out of memory at batch %d; continuing with %d", chunk, self.max_chunk)
                continue
            if out.ndim != 2 or out.shape[0] != part.shape[0]:
                raise VprBenchError(
                    f"Model {type(self.model).__name__} returned shape {tuple(out.shape)} for a "
                    f"batch of {part.shape[0]}; a model must map [B,3,H,W] to [B,D]."
                )
            outputs.append(F.normalize(out.float(), dim=1))
            start += part.shape[0]
        return torch.cat(outputs)


def compute_descriptors(
    model: nn.Module,
    paths: Sequence[Path],
    policy: ResizePolicy,
    preprocess: Preprocess,
    sink: Sink,
    *,
    device: torch.device | str = "cpu",
    batch_size: int = 32,
    num_workers: int = 0,
    precision: str = "fp32",
    desc: str = "extract",
) -> None:
    """Run ``model`` over ``paths`` and hand each batch of descriptors to ``sink``.

    This is the uncached core; most callers want :func:`extract_descriptors`. The model is
    moved to ``device`` and put in eval mode (its training flag is restored afterwards).

    Raises:
        UsageError: Bad batch size or precision.
        VprBenchError: The model returns non-finite or wrongly shaped descriptors, or memory
            runs out at one image per batch.
    """
    import torch

    from vpr_bench.data.images import make_loader
    from vpr_bench.progress import progress

    dev = torch.device(device)
    check_precision(precision, dev)
    if batch_size < 1:
        raise UsageError(f"batch_size must be >= 1, got {batch_size}.")
    if not paths:
        return
    was_training = model.training
    model.eval()
    model.to(dev)
    if dev.type == "cuda":
        model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    forward = _AdaptiveForward(model, dev, precision)
    bar = progress(len(paths), desc, "img", leave=False)
    try:
        with torch.inference_mode():
            loader = make_loader(
                paths, policy, preprocess, batch_size, num_workers=num_workers, device=dev
            )
            for index_tensor, cpu_batch in loader:
                indices = np.asarray(index_tensor, dtype=np.int64)
                batch = cpu_batch.to(dev, non_blocking=True)
                if dev.type == "cuda":
                    batch = batch.contiguous(memory_format=torch.channels_last)
                rows = forward(batch).cpu().numpy()
                if not np.isfinite(rows).all():
                    raise _non_finite(model, paths, indices, rows, precision)
                sink(indices, rows)
                bar.update(len(indices))
    finally:
        bar.close()
        model.train(was_training)


def _non_finite(
    model: nn.Module,
    paths: Sequence[Path],
    indices: np.ndarray,
    rows: np.ndarray,
    precision: str,
) -> VprBenchError:
    """The error of a batch with NaN or infinite descriptors, naming the first bad image."""
    bad = int(np.flatnonzero(~np.isfinite(rows).all(axis=1))[0])
    where = (
        f"Model {type(model).__name__} produced NaN/inf descriptors for {paths[int(indices[bad])]}"
    )
    if precision != "fp32":
        return VprBenchError(
            f"{where} at precision {precision}; evaluate with --precision fp32 (the default), "
            "which has the range that half precisions lack."
        )
    return VprBenchError(
        f"{where} at full precision (fp32), so its weights or its forward are at fault, not "
        "the precision: check the --weights file (a training run that diverged? evaluate an "
        "earlier checkpoint) or the model's forward (a division by zero, a log of zero)."
    )


def _checked_sink(model: nn.Module, dim: int, sink: Sink) -> Sink:
    def checked(indices: np.ndarray, rows: np.ndarray) -> None:
        if rows.shape[1] != dim:
            raise VprBenchError(
                f"Model {type(model).__name__} declares descriptor_dim={dim} but returned "
                f"{rows.shape[1]}-dim descriptors."
            )
        sink(indices, rows)

    return checked


def _local_extract(
    model: nn.Module,
    paths: Sequence[Path],
    policy: ResizePolicy,
    preprocess: Preprocess,
    options: dict[str, Any],
) -> np.ndarray:
    """Extract into an in-memory array (no cache)."""
    out = np.zeros((len(paths), descriptor_dim(model)), dtype=np.float32)

    def sink(indices: np.ndarray, rows: np.ndarray) -> None:
        out[indices] = rows

    compute_descriptors(
        model, paths, policy, preprocess, _checked_sink(model, out.shape[1], sink), **options
    )
    return out


def extract_with_stats(
    model: nn.Module,
    paths: Sequence[Path],
    policy: ResizePolicy,
    preprocess: Preprocess,
    *,
    device: torch.device | str = "cpu",
    batch_size: int = 32,
    num_workers: int = 0,
    precision: str = "fp32",
    cache: DescriptorCache | None = None,
    desc: str = "extract",
) -> Extraction:
    """Extract (or read from ``cache``) the descriptors of ``paths`` and time it.

    Args:
        model: An ``nn.Module`` with ``descriptor_dim``; moved to ``device``.
        paths: The images, in index order.
        policy: The protocol's resize policy for these images.
        preprocess: The model's input convention.
        device: Torch device.
        batch_size: Images per batch (halved automatically on CUDA out-of-memory).
        num_workers: DataLoader worker processes (0 decodes in this process).
        precision: ``"fp32"`` (default, protocol parity), ``"bf16"`` or ``"fp16"``.
        cache: Where to look up and store the descriptors (None: no cache).
        desc: Progress-bar label.

    Returns:
        An :class:`Extraction`.
    """
    from vpr_bench.eval import distributed

    paths = [Path(p) for p in paths]
    descriptor_dim(model)
    options: dict[str, Any] = {
        "device": device,
        "batch_size": batch_size,
        "num_workers": num_workers,
        "precision": precision,
        "desc": desc,
    }
    if distributed.world_size() > 1:
        return distributed.extract_sharded(model, paths, policy, preprocess, options, cache)
    key = cache.key(paths, policy, preprocess, precision) if cache is not None else ""
    if cache is not None:
        cached = cache.load(key, len(paths))
        if cached is not None:
            return Extraction(cached, 0.0, 0.0, True)
    start = time.perf_counter()
    if cache is None:
        descriptors = _local_extract(model, paths, policy, preprocess, options)
    else:
        # Stream every batch straight into the cache's memory map: bounded host memory.
        dim = descriptor_dim(model)
        with cache.writer(key, len(paths), dim, _meta(cache, policy, preprocess, precision)) as w:
            compute_descriptors(
                model, paths, policy, preprocess, _checked_sink(model, dim, w.write_at), **options
            )
        loaded = cache.load(key, len(paths))
        if loaded is None:  # pragma: no cover - the writer just committed it
            raise VprBenchError(f"Descriptor cache entry {cache.path(key)} vanished after writing.")
        descriptors = loaded
    seconds = time.perf_counter() - start
    return Extraction(descriptors, seconds, len(paths) / seconds if seconds > 0 else 0.0, False)


def _meta(
    cache: DescriptorCache, policy: ResizePolicy, preprocess: Preprocess, precision: str
) -> dict[str, object]:
    return {
        "resize": policy.describe(),
        "preprocess": repr(preprocess),
        "precision": precision,
        "storage": cache.storage,
    }


def store(
    cache: DescriptorCache,
    key: str,
    descriptors: np.ndarray,
    policy: ResizePolicy,
    preprocess: Preprocess,
    precision: str,
    chunk_rows: int = 65536,
) -> None:
    """Write ``descriptors`` to ``cache`` under ``key`` in chunks (atomically)."""
    n, dim = descriptors.shape
    with cache.writer(key, n, dim, _meta(cache, policy, preprocess, precision)) as writer:
        for start in range(0, n, chunk_rows):
            writer.write(start, descriptors[start : start + chunk_rows])


def extract_descriptors(
    model: nn.Module,
    paths: Sequence[Path],
    policy: ResizePolicy,
    preprocess: Preprocess,
    *,
    device: torch.device | str = "cpu",
    batch_size: int = 32,
    num_workers: int = 0,
    precision: str = "fp32",
    cache: DescriptorCache | None = None,
) -> np.ndarray:
    """The ``[N, D]`` float32 L2-normalised descriptors of ``paths``.

    See :func:`extract_with_stats` for the arguments; this drops the timing.
    """
    return extract_with_stats(
        model,
        paths,
        policy,
        preprocess,
        device=device,
        batch_size=batch_size,
        num_workers=num_workers,
        precision=precision,
        cache=cache,
    ).descriptors
