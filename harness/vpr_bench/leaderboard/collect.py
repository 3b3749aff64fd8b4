"""Collect result records from a records folder into a pandas DataFrame.

The folder follows ``<benchmark>/<method>.<tag>/<dataset>.<split>.<data>.json`` (see
:func:`vpr_bench.records.record_path`). Every file is read with
:func:`vpr_bench.records.read_record`; a file that fails is reported by name and skipped, never
guessed at.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vpr_bench.errors import RecordError, UsageError
from vpr_bench.records import EvalRecord, read_record, record_path

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "SECTION_KEYS",
    "Collection",
    "RecordProblem",
    "collect_records",
    "records_frame",
    "trained_here",
]

logger = logging.getLogger(__name__)

SECTION_KEYS = (
    "benchmark",
    "protocol_name",
    "protocol_version",
    "protocol_digest",
    "dataset",
    "dataset_version",
    "split",
    "data_digest",
)
"""The columns that identify one leaderboard table: rows are comparable only within it.

``dataset_version`` is there because a reader (or, for generated data such as synthcity, the
generator) can change what a split holds without the protocol's rules changing;
``data_digest`` because one reader reads many folders (two VPR-Bench folders, the tiny and the
small synthetic city): results on different data never share a table (``""`` for records
written before data identities were recorded).
"""


@dataclass(frozen=True)
class RecordProblem:
    """A record file that could not be used, and why."""

    path: Path
    message: str


@dataclass
class Collection:
    """What a records folder holds.

    Attributes:
        records: Valid records with the file each came from, sorted by path.
        problems: Files that failed to read or sit at the wrong place, sorted by path.
        hidden: ``{benchmark: count}`` of records with ``leaderboard=False``.
    """

    records: list[tuple[Path, EvalRecord]] = field(default_factory=list)
    problems: list[RecordProblem] = field(default_factory=list)
    hidden: dict[str, int] = field(default_factory=dict)

    @property
    def shown(self) -> list[tuple[Path, EvalRecord]]:
        """The records that appear on leaderboards (``leaderboard=True``)."""
        return [(path, record) for path, record in self.records if record.leaderboard]

    def benchmarks(self) -> list[str]:
        """Every benchmark with at least one valid record (shown or hidden), sorted."""
        return sorted({record.benchmark for _, record in self.records})


def collect_records(records_dir: Path) -> Collection:
    """Read every ``*.json`` record under ``records_dir``.

    Each file is validated with :func:`read_record` and must sit at its canonical
    :func:`record_path`, so the folder a record is in always agrees with its benchmark, method,
    checkpoint, dataset and split.

    Args:
        records_dir: The records root (``leaderboards/records``).

    Returns:
        The valid records, the problems (one per bad file) and the hidden counts.

    Raises:
        UsageError: ``records_dir`` does not exist or is not a folder.
    """
    root = Path(records_dir)
    if root.exists() and not root.is_dir():
        raise UsageError(
            f"Records folder {root} is a file, not a folder. Pass the folder that holds "
            "<benchmark>/<method>.<tag>/<dataset>.<split>.json records with --records DIR "
            "(default: leaderboards/records)."
        )
    if not root.is_dir():
        raise UsageError(
            f"Records folder {root} does not exist. Records are written by 'vpr-bench run' and "
            "'vpr-bench eval' into leaderboards/records; run from the repository root or pass "
            "--records DIR."
        )
    found = Collection()
    paths = sorted(
        p for p in root.rglob("*.json") if not any(part.startswith(".") for part in p.parts[-3:])
    )
    for path in paths:
        try:
            record = read_record(path)
        except RecordError as exc:
            found.problems.append(RecordProblem(path, str(exc)))
            continue
        expected = record_path(root, record)
        if path.resolve() != expected.resolve():
            found.problems.append(
                RecordProblem(
                    path,
                    f"{path}: the record (benchmark {record.benchmark!r}, method "
                    f"{record.method!r}, checkpoint {record.checkpoint_tag!r}, dataset "
                    f"{record.dataset!r}, split {record.split!r}) belongs at {expected}; "
                    "move it there.",
                )
            )
            continue
        found.records.append((path, record))
        if not record.leaderboard:
            found.hidden[record.benchmark] = found.hidden.get(record.benchmark, 0) + 1
    logger.info("read %d records, %d problems", len(found.records), len(found.problems))
    return found


def trained_here(trained_on: str, dataset: str, resolve: Callable[[str], str] | None) -> bool:
    """Whether weights trained on ``trained_on`` were tested on their own training dataset.

    Args:
        trained_on: The ``--dataset`` style training set name (``"pitts30k-train"``), or ``""``.
        dataset: The tested dataset name (``"pitts30k"``).
        resolve: Maps a ``--dataset`` name to its dataset name (from the registries); when it
            is None or fails, ``trained_on`` counts as ``dataset`` when it equals it or starts
            with ``dataset + "-"``.
    """
    if not trained_on:
        return False
    if resolve is not None:
        try:
            return resolve(trained_on) == dataset
        except Exception:  # an unknown name falls back to the name rule
            logger.debug("cannot resolve trained_on %r; using the name rule", trained_on)
    return trained_on == dataset or trained_on.startswith(dataset + "-")


def _versions(record: EvalRecord) -> str:
    plugins = ", ".join(f"{k} {v}" for k, v in sorted(record.provenance.plugin_versions.items()))
    text = f"vpr-bench {record.provenance.vpr_bench_version}"
    return f"{text}; {plugins}" if plugins else text


def records_frame(
    records: Sequence[tuple[Path, EvalRecord]],
    resolve_dataset: Callable[[str], str] | None = None,
) -> pd.DataFrame:
    """One row per record: the section keys, the row's identity and every metric as a column.

    Args:
        records: ``(path, record)`` pairs (hidden records should be left out by the caller).
        resolve_dataset: See :func:`trained_here`.

    Returns:
        A DataFrame with the :data:`SECTION_KEYS`, ``kind`` (``"ours"``), ``method``,
        ``checkpoint``, ``profile``, ``trained_on``, ``trained_here``, ``descriptor_dim``,
        ``images_per_s``, ``device``, ``versions``, ``source``, ``variant``, ``path``,
        ``protocol`` (the protocol dict), ``per_condition`` (dict) and one float column per
        metric name (``"R@1"``, ``"mAP@5"``, ...; NaN where a record lacks it).
    """
    import pandas as pd

    rows = [_record_row(path, record, resolve_dataset) for path, record in records]
    return pd.DataFrame(rows, columns=_columns(rows))


def _record_row(
    path: Path, record: EvalRecord, resolve: Callable[[str], str] | None
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "benchmark": record.benchmark,
        "protocol_name": str(record.protocol["name"]),
        "protocol_version": int(record.protocol["version"]),
        "protocol_digest": record.protocol_digest,
        "dataset": record.dataset,
        "dataset_version": int(record.dataset_version),
        "split": record.split,
        "data_digest": str(record.data.get("digest", "")),
        "data_name": str(record.data.get("name", "")),
        "kind": "ours",
        "method": record.method,
        "checkpoint": record.checkpoint_tag,
        "profile": record.profile,
        "trained_on": record.trained_on,
        "trained_here": trained_here(record.trained_on, record.dataset, resolve),
        "descriptor_dim": record.descriptor_dim,
        "images_per_s": float(record.timing.images_per_s),
        "device": record.provenance.device,
        "versions": _versions(record),
        "source": "",
        "variant": f"config of {record.baseline_of}" if record.baseline_of else "",
        "path": path.as_posix(),
        "protocol": dict(record.protocol),
        "per_condition": {k: dict(v) for k, v in record.per_condition.items()},
        "seed": int(record.provenance.seed),
        "config": dict(record.config),
    }
    for name, value in record.metrics.items():
        row[name] = float(value)
    return row


def _columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    base = [
        *SECTION_KEYS,
        "data_name",
        "kind",
        "method",
        "checkpoint",
        "profile",
        "trained_on",
        "trained_here",
        "descriptor_dim",
        "images_per_s",
        "device",
        "versions",
        "source",
        "variant",
        "path",
        "protocol",
        "per_condition",
        "seed",
        "config",
    ]
    metrics = sorted({k for row in rows for k in row if k not in base}, key=metric_sort_key)
    return base + metrics


def metric_sort_key(name: str) -> tuple[str, float, str]:
    """Order metric names by family then N: ``R@1 < R@5 < R@10 < mAP@5``."""
    family, _, n = name.partition("@")
    try:
        number = float(n)
    except ValueError:
        number = math.inf
    return (family, number, name)
