"""On-disk descriptor cache: ``.npy`` files written in chunks through a memory map.

An entry is keyed by everything that changes descriptors: the model's weights (sha256 of the
weights file, or a digest of the state dict), the image list (paths and file sizes), the
resize policy, the model's preprocessing and the extraction precision. It is written to a
temporary file in the cache folder and renamed into place only when every row is written, so
a crash never leaves a half-valid entry. Entries are read back memory-mapped.

Location: ``$VPR_BENCH_CACHE`` or ``~/.cache/vpr-bench/descriptors``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Literal

import numpy as np

from vpr_bench.atomic import atomic_write_json
from vpr_bench.errors import DataError, UsageError
from vpr_bench.protocol import ResizePolicy
from vpr_bench.specs import Preprocess

__all__ = ["CACHE_FORMAT_VERSION", "CacheWriter", "DescriptorCache", "default_cache_dir"]

log = logging.getLogger(__name__)

CACHE_FORMAT_VERSION = 1
"""Bumped when the cache layout or the extraction semantics change (invalidates entries)."""

StorageDtype = Literal["float32", "float16"]


def default_cache_dir() -> Path:
    """``$VPR_BENCH_CACHE`` or ``~/.cache/vpr-bench/descriptors``."""
    env = os.environ.get("VPR_BENCH_CACHE")
    if env:
        return Path(env).expanduser()
    return Path("~/.cache/vpr-bench/descriptors").expanduser()


def _items_digest(paths: Sequence[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        try:
            size = os.stat(path).st_size
        except OSError:
            size = -1
        digest.update(f"{path}\0{size}\n".encode())
    return digest.hexdigest()


class CacheWriter:
    """Receives descriptor rows for one cache entry; committed by :meth:`DescriptorCache.writer`.

    Args:
        array: The memory-mapped temporary array ``[N, D]``.
    """

    def __init__(self, array: np.ndarray) -> None:
        self._array = array
        self._written = np.zeros(array.shape[0], dtype=bool)

    def write(self, start: int, rows: np.ndarray) -> None:
        """Store ``rows`` at rows ``start .. start + len(rows)``."""
        self.write_at(np.arange(start, start + len(rows)), rows)

    def write_at(self, indices: np.ndarray, rows: np.ndarray) -> None:
        """Store ``rows[i]`` at row ``indices[i]``."""
        if rows.shape[1:] != self._array.shape[1:]:
            raise ValueError(
                f"Descriptor cache: rows of shape {rows.shape[1:]} do not fit an entry of "
                f"dimension {self._array.shape[1:]}."
            )
        self._array[indices] = rows.astype(self._array.dtype, copy=False)
        self._written[indices] = True

    @property
    def complete(self) -> bool:
        """True once every row has been written."""
        return bool(self._written.all())


class DescriptorCache:
    """A folder of descriptor arrays for one model.

    Args:
        root: The cache folder (default :func:`default_cache_dir`).
        model_key: Identifies the weights: the sha256 of the weights file, or
            :func:`vpr_bench.weights.state_dict_digest` for models without a file. Prefix it
            with the model name so that two architectures never share entries.
        storage: ``"float32"`` (exact) or ``"float16"`` (half the disk; rows are
            re-normalised in float32 on reading).
    """

    def __init__(
        self, root: Path | None = None, *, model_key: str, storage: StorageDtype = "float32"
    ) -> None:
        if not model_key:
            raise UsageError("DescriptorCache needs a model_key (the weights' sha256 or digest).")
        if storage not in ("float32", "float16"):
            raise UsageError(
                f"Descriptor cache storage must be float32 or float16, not {storage!r}."
            )
        self.root = Path(root) if root is not None else default_cache_dir()
        self.model_key = model_key
        self.storage: StorageDtype = storage

    def key(
        self,
        paths: Sequence[Path],
        policy: ResizePolicy,
        preprocess: Preprocess,
        precision: str,
    ) -> str:
        """The entry key (64 hex digits) of extracting ``paths`` with these settings."""
        parts = {
            "format": CACHE_FORMAT_VERSION,
            "model": self.model_key,
            "items": _items_digest(paths),
            "n": len(paths),
            "resize": asdict(policy),
            "preprocess": asdict(preprocess),
            "precision": precision,
            "storage": self.storage,
        }
        payload = json.dumps(parts, sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()

    def path(self, key: str) -> Path:
        """Where the entry ``key`` lives."""
        folder = hashlib.sha256(self.model_key.encode()).hexdigest()[:16]
        return self.root / folder / f"{key}.npy"

    def load(self, key: str, n: int) -> np.ndarray | None:
        """The cached ``[n, D]`` float32 descriptors of ``key``, or None when absent.

        float32 entries come back memory-mapped (read-only); float16 entries are converted
        and re-normalised in memory.

        Raises:
            DataError: The entry exists but does not hold ``n`` rows (delete it to rebuild).
        """
        path = self.path(key)
        if not path.exists():
            return None
        try:
            # Copy-on-write mapping: writable for torch.from_numpy, never changes the file.
            array: np.ndarray = np.load(path, mmap_mode="c")
        except (OSError, ValueError) as exc:
            raise DataError(
                f"Descriptor cache entry {path} is unreadable ({exc}); delete it to rebuild."
            ) from exc
        if array.ndim != 2 or array.shape[0] != n:
            raise DataError(
                f"Descriptor cache entry {path} holds shape {array.shape}, expected {n} rows; "
                "delete it to rebuild."
            )
        log.info("descriptor cache hit: %s", path)
        if array.dtype == np.float32:
            return array
        full: np.ndarray = np.asarray(array, dtype=np.float32)
        norms = np.linalg.norm(full, axis=1, keepdims=True)
        normalised: np.ndarray = full / np.maximum(norms, 1e-12)
        return normalised

    @contextlib.contextmanager
    def writer(self, key: str, n: int, dim: int, meta: dict[str, object]) -> Iterator[CacheWriter]:
        """Open a new entry for ``n`` rows of dimension ``dim``; it appears only when complete.

        Args:
            key: From :meth:`key`.
            n: Number of rows.
            dim: Descriptor dimension.
            meta: JSON-ready description written beside the entry (``<key>.json``).

        Yields:
            A :class:`CacheWriter`. When the block ends normally with every row written, the
            entry is flushed, fsynced and renamed into place; otherwise the temporary file is
            removed and nothing is cached.
        """
        final = self.path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            array = np.lib.format.open_memmap(tmp, mode="w+", dtype=self.storage, shape=(n, dim))
            writer = CacheWriter(array)
            yield writer
            if not writer.complete:
                raise RuntimeError(
                    f"Descriptor cache entry {final.name}: not every row was written."
                )
            array.flush()
            del array, writer
            with tmp.open("rb+") as handle:
                os.fsync(handle.fileno())
            atomic_write_json(final.with_suffix(".json"), {**meta, "key": key, "shape": [n, dim]})
            os.replace(tmp, final)
            log.info("descriptor cache written: %s", final)
        finally:
            tmp.unlink(missing_ok=True)
