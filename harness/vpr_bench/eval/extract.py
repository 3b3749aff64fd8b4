"""Descriptor extraction: images -> L2-normalised float32 ``[N, D]`` descriptors.

The model runs in eval mode under ``torch.inference_mode``, in float32 by default (protocol
parity); ``precision="bf16"``/``"fp16"`` autocasts on CUDA (bf16 also on CPU) and is recorded.
On CUDA the model and batches use channels_last and pinned host memory. Images come from
:func:`vpr_bench.data.images.make_loader`, whose batches never mix output sizes (so a
"shorter side" query policy batches correctly). A CUDA out-of-memory error halves the batch
and continues. Every output row is re-normalised in float32 (as OpenIBL does).

Under ``torchrun`` (``WORLD_SIZE`` > 1) :func:`extract_with_stats` hands over to
:mod:`vpr_bench.eval.distributed`, which shards the images over ranks.

A model may declare domains (DISAM: one encoder per domain): a ``domains`` attribute listing its
domain labels, the reference first, and a forward taking ``domain=<label>``. Callers then pass
each image's label (:func:`image_domains`: its ``domain``, else its ``condition``; None means
the reference) and the images are extracted in one pass per domain; a label the model does not
know is an error listing its domains (:func:`check_domains`).

The domain helpers live in :mod:`vpr_bench.eval.domains`, the precision checks and the
OOM-halving forward pass in :mod:`vpr_bench.eval.forward`; their public names are re-exported
here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vpr_bench.errors import UsageError, VprBenchError
from vpr_bench.eval.domains import check_domains, domain_runs, image_domains, model_domains
from vpr_bench.eval.forward import PRECISIONS, AdaptiveForward, Precision, check_precision
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
    "check_domains",
    "compute_descriptors",
    "descriptor_dim",
    "extract_descriptors",
    "extract_with_stats",
    "image_domains",
    "model_domains",
]

log = logging.getLogger(__name__)

Sink = Callable[[np.ndarray, np.ndarray], None]
"""``sink(indices, rows)`` receives float32 descriptor rows for the given image indices."""


@dataclass(frozen=True)
class Extraction:
    """Descriptors and how they were made.

    Attributes:
        descriptors: ``[N, D]`` float32, L2-normalised (memory-mapped when read from the
            cache). On ranks other than 0 of a distributed run: an empty ``[0, D]`` array.
        seconds: Wall time of the extraction; for descriptors read from the cache, the time
            measured when the entry was written (0 for entries that did not store it).
        images_per_s: Throughput, likewise (0 when unknown).
        from_cache: True when the descriptors came from the cache.
    """

    descriptors: np.ndarray
    seconds: float
    images_per_s: float
    from_cache: bool

    @classmethod
    def timed(cls, descriptors: np.ndarray, n: int, seconds: float, from_cache: bool) -> Extraction:
        """An extraction of ``n`` images in ``seconds`` (rate 0 when the time is unknown)."""
        return cls(descriptors, seconds, n / seconds if seconds > 0 else 0.0, from_cache)


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
    domains: Sequence[str | None] | None = None,
) -> None:
    """Run ``model`` over ``paths`` and hand each batch of descriptors to ``sink``.

    This is the uncached core; most callers want :func:`extract_descriptors`. The model is
    moved to ``device`` and put in eval mode (its training flag is restored afterwards).
    With ``domains`` (one label per path) and a model that declares domains, each domain's
    images run in their own pass through ``model(batch, domain=label)``.

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
    runs: list[tuple[str | None, np.ndarray]] = [(None, np.arange(len(paths)))]
    reference = model_domains(model)
    if domains is not None and reference:
        if len(domains) != len(paths):
            raise UsageError(f"{len(domains)} domain labels for {len(paths)} images.")
        check_domains(model, domains)
        runs = list(domain_runs(domains, reference[0]))
    was_training = model.training
    model.eval()
    model.to(dev)
    if dev.type == "cuda":
        model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    forward = AdaptiveForward(model, dev, precision)
    bar = progress(len(paths), desc, "img", leave=False)
    try:
        with torch.inference_mode():
            for label, members in runs:
                forward.domain = label
                run_paths = [paths[int(i)] for i in members]
                loader = make_loader(
                    run_paths, policy, preprocess, batch_size, num_workers=num_workers, device=dev
                )
                for index_tensor, cpu_batch in loader:
                    indices = members[np.asarray(index_tensor, dtype=np.int64)]
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
    domains: Sequence[str | None] | None = None,
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
        domains: One domain label per image, for a model that declares domains
            (:func:`image_domains`); part of the cache key. Ignored by other models.

    Returns:
        An :class:`Extraction`.
    """
    from vpr_bench.eval import distributed

    paths = [Path(p) for p in paths]
    descriptor_dim(model)
    if not model_domains(model):
        domains = None
    options: dict[str, Any] = {
        "device": device,
        "batch_size": batch_size,
        "num_workers": num_workers,
        "precision": precision,
        "desc": desc,
    }
    if domains is not None:
        if distributed.world_size() > 1:
            raise UsageError(
                f"Model {type(model).__name__} has per-domain encoders; its extraction runs in "
                "one process: evaluate without torchrun."
            )
        options["domains"] = domains
    if distributed.world_size() > 1:
        return distributed.extract_sharded(model, paths, policy, preprocess, options, cache)
    key = cache.key(paths, policy, preprocess, precision, domains) if cache is not None else ""
    if cache is not None:
        cached = cache.load(key, len(paths))
        if cached is not None:
            # A rerun keeps the throughput its descriptors were made at, so a record that
            # replaces an identical one does not lose its speed column (0 when not stored).
            return Extraction.timed(cached, len(paths), cache.recorded_seconds(key), True)
    start = time.perf_counter()
    if cache is None:
        descriptors = _local_extract(model, paths, policy, preprocess, options)
    else:
        # Stream every batch straight into the cache's memory map: bounded host memory.
        dim = descriptor_dim(model)
        meta = cache.entry_meta(policy, preprocess, precision)
        with cache.writer(key, len(paths), dim, meta) as w:
            compute_descriptors(
                model, paths, policy, preprocess, _checked_sink(model, dim, w.write_at), **options
            )
            seconds = time.perf_counter() - start
            meta["seconds"] = seconds  # the writer stores meta when it commits the entry
        loaded = cache.load(key, len(paths))
        if loaded is None:  # pragma: no cover - the writer just committed it
            raise VprBenchError(f"Descriptor cache entry {cache.path(key)} vanished after writing.")
        # The time stored with the entry, so that a later cache hit reports it to the bit.
        return Extraction.timed(loaded, len(paths), seconds, False)
    return Extraction.timed(descriptors, len(paths), time.perf_counter() - start, False)


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
    domains: Sequence[str | None] | None = None,
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
        domains=domains,
    ).descriptors
