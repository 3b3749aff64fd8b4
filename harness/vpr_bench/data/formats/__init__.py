"""Readers of real on-disk dataset formats, one module per format.

* :mod:`.netvlad_mat` - NetVLAD ``dbStruct`` .mat files (Pittsburgh, Tokyo 24/7, TokyoTM).
* :mod:`.msls` - Mapillary SLS ``train_val/<city>/{database,query}/*.csv``.
* :mod:`.datasets_vg` - gmberton's ``@east@north@...@.jpg`` folders.
* :mod:`.vprbench` - VPR-Bench ``ref/``, ``query/``, ``ground_truth_new.npy``.
* :mod:`.csv_list` - the plain ``path,easting,northing[,condition]`` CSV format.

Every reader returns a :class:`~vpr_bench.data.split.GeoSplit` and lists names and positions
without opening the images (checking that they exist is ``vpr-bench data check``). This
package holds the helpers they share; it imports nothing heavy.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from vpr_bench.data.split import ImageRecord
from vpr_bench.errors import DataError

__all__ = ["IMAGE_SUFFIXES", "require_dir", "split_manifest"]

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png"})
"""Image file suffixes the folder readers accept (compared lower-case)."""


def _relative(path: Path, prefix: str) -> str:
    text = path.as_posix()
    return text[len(prefix) :] if prefix and text.startswith(prefix) else text


def split_manifest(
    database: Sequence[ImageRecord], queries: Sequence[ImageRecord], root: Path | None
) -> str:
    """A sha256 digest of a split's names (relative to ``root``) and positions.

    Two loads of the same data under different roots give the same digest, so caches keyed
    by it survive moving a dataset.
    """
    digest = hashlib.sha256()
    prefix = root.as_posix().rstrip("/") + "/" if root is not None else ""
    for tag, records in (("db", database), ("q", queries)):
        lines = [f"{tag}:{len(records)}"]
        lines += [f"{_relative(r.path, prefix)}\t{r.easting!r}\t{r.northing!r}" for r in records]
        digest.update(("\n".join(lines) + "\n").encode())
    return digest.hexdigest()


def require_dir(path: Path, what: str, fix: str) -> Path:
    """Return ``path`` when it is a directory, else raise a DataError naming it and the fix."""
    if not path.is_dir():
        state = "is not a directory" if path.exists() else "does not exist"
        raise DataError(f"{what} {path} {state}. {fix}")
    return path
