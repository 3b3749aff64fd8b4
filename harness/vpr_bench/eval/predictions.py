"""Predictions files: everything needed to recompute metrics without re-extracting.

A ``.npz`` (no pickles; loads with ``allow_pickle=False``) holding:

* ``knn_idx`` ``[Q, K]`` int64 and ``knn_dist`` ``[Q, K]`` float32: the ranking;
* ``positives_flat`` int64 and ``positives_offsets`` ``[Q + 1]`` int64: query ``q``'s positives
  are ``positives_flat[offsets[q]:offsets[q + 1]]``;
* ``query_names`` / ``db_names``: image paths relative to the dataset root (``meta["root"]``);
* ``query_conditions``, ``db_place_ids``, ``query_timestamps``, ``db_timestamps`` (optional,
  with a boolean ``*_known`` mask each, since ``None`` is not a numpy string);
* ``n_database`` (0-d int64);
* ``protocol_json``, ``counts_json``, ``metrics_json``, ``per_condition_json``, ``meta_json``:
  JSON text (0-d unicode arrays);
* ``digests_json``: the sha256 of every other entry (its dtype, shape and bytes), so a file
  whose entry was changed after writing is refused on loading instead of being taken for a
  change in the metric code (files written before it existed load unverified).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vpr_bench.atomic import atomic_open
from vpr_bench.errors import DataError
from vpr_bench.protocol import EvalProtocol
from vpr_bench.runtime import RetrievalResult

__all__ = [
    "PREDICTIONS_FORMAT_VERSION",
    "Predictions",
    "decode_positives",
    "encode_positives",
    "load_predictions",
    "relative_names",
    "save_predictions",
]

PREDICTIONS_FORMAT_VERSION = 1

_OPTIONAL = ("query_conditions", "db_place_ids", "query_timestamps", "db_timestamps")
_REQUIRED = (
    "knn_idx",
    "knn_dist",
    "positives_flat",
    "positives_offsets",
    "query_names",
    "db_names",
    "n_database",
    "protocol_json",
    "counts_json",
    "metrics_json",
    "per_condition_json",
    "meta_json",
)


@dataclass(frozen=True)
class Predictions:
    """A loaded predictions file.

    Attributes:
        result: The kNN result with ground truth (ready for ``compute_metrics``).
        protocol: The protocol the ranking was made under.
        query_names: Query paths relative to ``meta["root"]``.
        db_names: Database paths relative to ``meta["root"]``.
        counts: ``n_queries``, ``n_scored``, ... as stored.
        metrics: The metrics stored with the predictions.
        per_condition: The per-condition metrics stored with the predictions.
        meta: Method, dataset, split, root and other context.
        verified: True when every entry matched the digest saved with it; False for a file
            written before digests were saved (it may have been edited).
    """

    result: RetrievalResult
    protocol: EvalProtocol
    query_names: tuple[str, ...]
    db_names: tuple[str, ...]
    counts: Mapping[str, int]
    metrics: Mapping[str, float]
    per_condition: Mapping[str, Mapping[str, float]]
    meta: Mapping[str, Any]
    verified: bool = False

    def query_paths(self) -> list[Path]:
        """Absolute query paths (``meta["root"]`` joined with the names)."""
        return _absolute(self.meta.get("root", ""), self.query_names)

    def db_paths(self) -> list[Path]:
        """Absolute database paths."""
        return _absolute(self.meta.get("root", ""), self.db_names)


def _absolute(root: str, names: Sequence[str]) -> list[Path]:
    base = Path(root) if root else Path()
    return [base / name for name in names]


def relative_names(paths: Sequence[Path], root: Path | None) -> list[str]:
    """Paths relative to ``root`` where they lie under it, else absolute, as POSIX text."""
    names = []
    for path in paths:
        p = Path(path)
        if root is not None:
            with contextlib.suppress(ValueError):
                p = p.relative_to(root)
        names.append(p.as_posix())
    return names


def encode_positives(positives: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Flatten per-query index arrays into ``(flat, offsets)`` (offsets has ``Q + 1`` entries)."""
    lengths = np.asarray([len(p) for p in positives], dtype=np.int64)
    offsets = np.zeros(len(positives) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    flat = (
        np.concatenate([np.asarray(p, dtype=np.int64) for p in positives])
        if len(positives)
        else np.zeros(0, dtype=np.int64)
    )
    return flat.astype(np.int64, copy=False), offsets


def decode_positives(flat: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, ...]:
    """Inverse of :func:`encode_positives`."""
    return tuple(flat[offsets[i] : offsets[i + 1]].copy() for i in range(len(offsets) - 1))


def _labels(values: Sequence[str | None] | None) -> tuple[np.ndarray, np.ndarray] | None:
    if values is None:
        return None
    known = np.asarray([v is not None for v in values], dtype=bool)
    text = np.asarray(["" if v is None else str(v) for v in values], dtype=np.str_)
    return text, known


def save_predictions(
    path: Path,
    *,
    result: RetrievalResult,
    protocol: EvalProtocol,
    query_names: Sequence[str],
    db_names: Sequence[str],
    counts: Mapping[str, int],
    metrics: Mapping[str, float],
    per_condition: Mapping[str, Mapping[str, float]],
    meta: Mapping[str, Any],
) -> Path:
    """Write a predictions file atomically and return its path.

    Raises:
        ValueError: The names do not match the result's query or database count.
    """
    if len(query_names) != result.n_queries or len(db_names) != result.n_database:
        raise ValueError(
            f"save_predictions: {len(query_names)} query names and {len(db_names)} database "
            f"names for a result of {result.n_queries} queries and {result.n_database} items."
        )
    flat, offsets = encode_positives(result.positives)
    arrays: dict[str, np.ndarray] = {
        "knn_idx": np.asarray(result.knn_idx, dtype=np.int64),
        "knn_dist": np.asarray(result.knn_dist, dtype=np.float32),
        "positives_flat": flat,
        "positives_offsets": offsets,
        "query_names": np.asarray(list(query_names), dtype=np.str_),
        "db_names": np.asarray(list(db_names), dtype=np.str_),
        "n_database": np.asarray(result.n_database, dtype=np.int64),
        "protocol_json": np.asarray(json.dumps(protocol.to_dict(), sort_keys=True)),
        "counts_json": np.asarray(json.dumps(dict(counts), sort_keys=True)),
        "metrics_json": np.asarray(json.dumps(dict(metrics), sort_keys=True)),
        "per_condition_json": np.asarray(
            json.dumps({k: dict(v) for k, v in per_condition.items()}, sort_keys=True)
        ),
        "meta_json": np.asarray(
            json.dumps({**meta, "format": PREDICTIONS_FORMAT_VERSION}, sort_keys=True, default=str)
        ),
    }
    for name in _OPTIONAL:
        encoded = _labels(getattr(result, name))
        if encoded is not None:
            arrays[name], arrays[f"{name}_known"] = encoded
    digests = {name: _digest(array) for name, array in arrays.items()}
    arrays[_DIGESTS] = np.asarray(json.dumps(digests, sort_keys=True))
    with atomic_open(path, "wb") as handle:
        np.savez_compressed(handle, **arrays)  # type: ignore[arg-type]
    return Path(path)


_DIGESTS = "digests_json"


def _digest(array: np.ndarray) -> str:
    """sha256 of an entry's dtype, shape and bytes."""
    array = np.ascontiguousarray(array)
    digest = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
    digest.update(array.tobytes())
    return digest.hexdigest()


def _verify(path: Path, data: Any) -> bool:
    """Check every entry against ``digests_json``; False when the file has no digests.

    Raises:
        DataError: An entry was changed, added or removed after the file was written.
    """
    if _DIGESTS not in data.files:
        return False
    saved = _json(path, data, _DIGESTS)
    names = set(data.files) - {_DIGESTS}
    if not isinstance(saved, dict):
        raise DataError(f"{path}: entry {_DIGESTS!r} is not a mapping of entry digests.")
    changed = sorted(n for n in names & set(saved) if _digest(data[n]) != saved[n])
    added, removed = sorted(names - set(saved)), sorted(set(saved) - names)
    if changed or added or removed:
        what = "; ".join(
            f"{label} {', '.join(map(repr, items))}"
            for label, items in (("changed", changed), ("added", added), ("removed", removed))
            if items
        )
        raise DataError(
            f"{path} was edited after it was written ({what}: the sha256 saved with each entry "
            "no longer matches), so its stored metrics do not describe it. Use the file as "
            "'vpr-bench eval' wrote it, or evaluate again to write a new one."
        )
    return True


def _json(path: Path, data: Any, key: str) -> Any:
    try:
        return json.loads(str(data[key][()]))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: entry {key!r} is not valid JSON ({exc}).") from exc


def load_predictions(path: Path) -> Predictions:
    """Read a predictions file written by :func:`save_predictions`.

    Raises:
        DataError: The file is missing, not an ``.npz``, lacks an entry, is inconsistent, or
            was edited after writing (an entry no longer matches its saved digest); the
            message names the file and the entry.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"Predictions file {path} does not exist; check the --from-predictions path."
        )
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a predictions .npz file ({exc}).") from exc
    with data:
        missing = [k for k in _REQUIRED if k not in data.files]
        if missing:
            raise DataError(
                f"{path}: not a vpr-bench predictions file (missing entry {missing[0]!r}); "
                "write one with 'vpr-bench eval ... --out DIR'."
            )
        verified = _verify(path, data)
        meta = _json(path, data, "meta_json")
        version = meta.get("format")
        if version != PREDICTIONS_FORMAT_VERSION:
            raise DataError(
                f"{path}: predictions format {version!r} is not the supported version "
                f"{PREDICTIONS_FORMAT_VERSION}."
            )
        flat = np.asarray(data["positives_flat"], dtype=np.int64)
        offsets = np.asarray(data["positives_offsets"], dtype=np.int64)
        knn_idx = np.asarray(data["knn_idx"], dtype=np.int64)
        if len(offsets) != knn_idx.shape[0] + 1 or (len(offsets) and offsets[-1] != len(flat)):
            raise DataError(
                f"{path}: positives_offsets ({len(offsets)} entries) do not fit "
                f"{knn_idx.shape[0]} queries and {len(flat)} positives."
            )
        labels: dict[str, tuple[str | None, ...] | None] = {}
        for name in _OPTIONAL:
            if name in data.files:
                known = data[f"{name}_known"]
                labels[name] = tuple(
                    str(v) if k else None for v, k in zip(data[name], known, strict=True)
                )
            else:
                labels[name] = None
        try:
            result = RetrievalResult(
                knn_idx=knn_idx,
                knn_dist=np.asarray(data["knn_dist"], dtype=np.float32),
                positives=decode_positives(flat, offsets),
                n_database=int(data["n_database"]),
                **labels,  # type: ignore[arg-type]
            )
        except ValueError as exc:
            raise DataError(f"{path}: {exc}") from exc
        return Predictions(
            result=result,
            protocol=EvalProtocol.from_dict(_json(path, data, "protocol_json")),
            query_names=tuple(str(n) for n in data["query_names"]),
            db_names=tuple(str(n) for n in data["db_names"]),
            counts=_json(path, data, "counts_json"),
            metrics=_json(path, data, "metrics_json"),
            per_condition=_json(path, data, "per_condition_json"),
            meta=meta,
            verified=verified,
        )
