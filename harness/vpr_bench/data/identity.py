"""What data a result was measured on: a readable name and a digest of the split's content.

A dataset name says which reader read the data, not which data: two VPR-Bench folders, or the
tiny and the small synthetic city, are one dataset to the registry. Every record therefore
carries the identity of the split it was measured on, and the leaderboard keeps records of
different data apart.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from vpr_bench.data.split import GeoSplit, ImageRecord

__all__ = ["data_identity"]


def _relative(path: Path, root: Path | None) -> str:
    if root is not None:
        try:
            return Path(path).relative_to(root).as_posix()
        except ValueError:
            pass
    return Path(path).name


def _lines(tag: str, records: tuple[ImageRecord, ...], root: Path | None) -> list[str]:
    return [f"{tag}:{len(records)}"] + [
        f"{_relative(r.path, root)}\t{r.easting!r}\t{r.northing!r}" for r in records
    ]


def data_identity(split: GeoSplit) -> dict[str, str]:
    """The identity of ``split``: ``{"name", "digest", "reader"}``.

    ``name`` is the dataset folder's name (what a user recognises: ``corridor``,
    ``synthcity-small``); ``digest`` is 16 hex digits of the sha256 of the image names
    (relative to the dataset root, so moving the folder keeps it), their positions and the
    explicit ground truth when the split ships one; ``reader`` is the reader's own
    :attr:`GeoSplit.manifest` (e.g. a generation's sha256), or ``""``.
    """
    root = Path(split.root) if split.root is not None else None
    lines = _lines("db", split.database, root) + _lines("q", split.queries, root)
    if split.positives is not None:
        lines.append("gt:" + json.dumps([list(p) for p in split.positives]))
    digest = hashlib.sha256(("\n".join(lines) + "\n").encode()).hexdigest()[:16]
    name = root.name if root is not None else ""
    return {"name": name, "digest": digest, "reader": str(split.manifest or "")}
