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
import errno
import hashlib
import json
import logging
import math
import os
import re
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Literal

import numpy as np

from vpr_bench.atomic import atomic_write_json, new_file_mode
from vpr_bench.errors import DataError, UsageError, VprBenchError
from vpr_bench.protocol import ResizePolicy
from vpr_bench.specs import Preprocess

__all__ = [
    "CACHE_FORMAT_VERSION",
    "CacheWriter",
    "DescriptorCache",
    "default_cache_dir",
    "remove_stale_temps",
]

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
        domains: Sequence[str | None] | None = None,
    ) -> str:
        """The entry key (64 hex digits) of extracting ``paths`` with these settings.

        ``domains`` (the per-image labels of a model with per-domain encoders) enter the key
        only when given, so the keys of every other extraction are unchanged.
        """
        parts: dict[str, object] = {
            "format": CACHE_FORMAT_VERSION,
            "model": self.model_key,
            "items": _items_digest(paths),
            "n": len(paths),
            "resize": policy.to_dict(),
            "preprocess": asdict(preprocess),
            "precision": precision,
            "storage": self.storage,
        }
        if domains is not None:
            parts["domains"] = [None if d is None else str(d) for d in domains]
        payload = json.dumps(parts, sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()

    def path(self, key: str) -> Path:
        """Where the entry ``key`` lives."""
        folder = hashlib.sha256(self.model_key.encode()).hexdigest()[:16]
        return self.root / folder / f"{key}.npy"

    def recorded_seconds(self, key: str) -> float:
        """The extraction time stored beside entry ``key`` when it was written (0 if none).

        An unreadable or older description file gives 0: the time is informative only.
        """
        try:
            meta = json.loads(self.path(key).with_suffix(".json").read_text(encoding="utf-8"))
            seconds = float(meta.get("seconds", 0.0)) if isinstance(meta, dict) else 0.0
        except (OSError, ValueError, TypeError):
            return 0.0
        return seconds if math.isfinite(seconds) and seconds > 0 else 0.0

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

    def entry_bytes(self, n: int, dim: int) -> int:
        """The size on disk of an entry of ``n`` rows of dimension ``dim`` (with its header)."""
        return n * dim * np.dtype(self.storage).itemsize + _ENTRY_OVERHEAD

    def check_room(self, entries: Sequence[tuple[str, int, int]]) -> None:
        """Check, before extracting, that the entries not cached yet can be written.

        Args:
            entries: ``(key, n, dim)`` of every entry the work will look up.

        Raises:
            UsageError: The cache folder is a file or cannot be written (read-only, no
                permission).
            VprBenchError: Its filesystem has less free space than the missing entries need.
        """
        from vpr_bench.atomic import check_writable_dir

        need = sum(
            self.entry_bytes(n, dim) for key, n, dim in entries if not self.path(key).exists()
        )
        if need:
            check_writable_dir(self.root, "Descriptor cache folder", _CACHE_FIX, need_bytes=need)

    def entry_meta(
        self, policy: ResizePolicy, preprocess: Preprocess, precision: str, seconds: float = 0.0
    ) -> dict[str, object]:
        """The description written beside an entry (``<key>.json``).

        ``seconds``, the time the extraction took, is what a later hit reports
        (:meth:`recorded_seconds`); the extractor may set it once the descriptors are written.
        """
        return {
            "resize": policy.describe(),
            "preprocess": repr(preprocess),
            "precision": precision,
            "storage": self.storage,
            "seconds": seconds,
        }

    def store(
        self,
        key: str,
        descriptors: np.ndarray,
        meta: dict[str, object],
        chunk_rows: int = 65536,
    ) -> None:
        """Write a whole ``[N, D]`` array under ``key`` in chunks (atomically)."""
        n, dim = descriptors.shape
        with self.writer(key, n, dim, meta) as writer:
            for start in range(0, n, chunk_rows):
                writer.write(start, descriptors[start : start + chunk_rows])

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
            removed and nothing is cached. The file's blocks are reserved before it is mapped,
            and stale temporary files of killed writers in the folder are removed first.

        Raises:
            VprBenchError: The entry cannot be written (full disk, permissions); one line
                naming the entry and the fixes, with nothing left behind.
        """
        final = self.path(key)
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            remove_stale_temps(final.parent)
            fd, tmp_name = tempfile.mkstemp(
                prefix=f".{final.name}.pid{os.getpid()}.", suffix=".tmp", dir=final.parent
            )
            os.fchmod(fd, new_file_mode())
            os.close(fd)
        except OSError as exc:
            raise _cache_write_error(final, exc) from exc
        tmp = Path(tmp_name)
        array: np.ndarray | None = None
        try:
            try:
                array = np.lib.format.open_memmap(
                    tmp, mode="w+", dtype=self.storage, shape=(n, dim)
                )
                _reserve(tmp)  # a full disk fails here, not as SIGBUS on a mapped write
            except OSError as exc:
                raise _cache_write_error(final, exc) from exc
            writer = CacheWriter(array)
            yield writer
            if not writer.complete:
                raise RuntimeError(
                    f"Descriptor cache entry {final.name}: not every row was written."
                )
            try:
                array.flush()
                del writer
                array = None
                with tmp.open("rb+") as handle:
                    os.fsync(handle.fileno())
                atomic_write_json(
                    final.with_suffix(".json"), {**meta, "key": key, "shape": [n, dim]}
                )
                os.replace(tmp, final)
            except OSError as exc:
                raise _cache_write_error(final, exc) from exc
            log.info("descriptor cache written: %s", final)
        finally:
            del array
            tmp.unlink(missing_ok=True)


STALE_LEGACY_TEMP_S = 24 * 3600
"""A temporary entry without a writer's pid is taken for an orphan after this many seconds."""

_TEMP_PID = re.compile(r"\.pid(\d+)\.[^.]*\.tmp$")


def remove_stale_temps(folder: Path) -> list[Path]:
    """Remove the temporary entries in ``folder`` left by killed writers.

    A temporary entry carries its writer's pid (``.<key>.npy.pid<N>.<random>.tmp``); it is
    stale when no process of that pid runs here. One without a pid (older vpr-bench) is stale
    after :data:`STALE_LEGACY_TEMP_S`. Live writers' files are left alone.

    Returns:
        The files removed.
    """
    removed = []
    now = time.time()
    for tmp in folder.glob(".*.tmp"):
        match = _TEMP_PID.search(tmp.name)
        try:
            if match is not None:
                stale = not _pid_alive(int(match.group(1)))
            else:
                stale = now - tmp.stat().st_mtime > STALE_LEGACY_TEMP_S
            if stale:
                tmp.unlink()
                removed.append(tmp)
        except OSError:  # raced with its writer or another cleaner
            continue
    if removed:
        log.info("descriptor cache: removed %d stale temporary file(s) in %s", len(removed), folder)
    return removed


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _reserve(path: Path) -> None:
    """Allocate every block of ``path`` now, so writes through a memory map cannot hit ENOSPC.

    Raises:
        OSError: The filesystem cannot hold the file (``ENOSPC``, quota).
    """
    fallocate = getattr(os, "posix_fallocate", None)
    if fallocate is None:  # pragma: no cover - macOS, Windows
        return
    with path.open("rb+") as handle:
        try:
            fallocate(handle.fileno(), 0, os.fstat(handle.fileno()).st_size)
        except OSError as exc:
            if exc.errno in (errno.EOPNOTSUPP, errno.EINVAL):  # pragma: no cover - e.g. ZFS
                log.debug("posix_fallocate unsupported on %s (%s)", path, exc)
                return
            raise


_CACHE_FIX = "Point --cache-dir (or VPR_BENCH_CACHE) to another folder, or pass --no-cache."

_ENTRY_OVERHEAD = 4096
"""Bytes beside the rows of an entry: the ``.npy`` header and the ``.json`` sidecar."""


def _cache_write_error(final: Path, exc: OSError) -> VprBenchError:
    from vpr_bench.atomic import NO_SPACE

    reason = exc.strerror or str(exc)
    if exc.errno in NO_SPACE:
        return VprBenchError(
            f"Cannot write descriptor cache entry {final}: {reason}; nothing was cached. Free "
            f"space in {final.parent.parent}, point VPR_BENCH_CACHE (or --cache-dir) to another "
            "folder, or pass --no-cache."
        )
    return VprBenchError(
        f"Cannot write descriptor cache entry {final}: {reason}; nothing was cached. {_CACHE_FIX}"
    )
