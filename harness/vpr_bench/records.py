"""Result records: ``EvalRecord`` with ``Provenance`` and ``Timing``, as versioned JSON.

A record says exactly how a number was made: method, weights, dataset and split, the full
protocol and its digest, the resolved config, versions, device and timing. Writes are atomic;
reading rejects unknown and missing keys (naming the file and the key) and migrates older schema
versions through :data:`MIGRATIONS`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from vpr_bench.atomic import atomic_write_json
from vpr_bench.errors import RecordError
from vpr_bench.specs import normalize_name

__all__ = [
    "MIGRATIONS",
    "PERCENT_PREFIXES",
    "SCHEMA_VERSION",
    "EvalRecord",
    "Provenance",
    "Timing",
    "check_record_values",
    "protocol_digest",
    "read_record",
    "record_path",
    "record_to_dict",
    "write_record",
]

SCHEMA_VERSION = 2


def _v1_to_v2(raw: dict[str, Any]) -> dict[str, Any]:
    """Schema 2 added ``data`` (the identity of the split); a v1 record's data is unknown."""
    raw.setdefault("data", {})
    return raw


MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _v1_to_v2}
"""``{old_version: upgrade}``: each upgrade maps a v``old`` dict to a v``old + 1`` dict.

When the schema changes, bump :data:`SCHEMA_VERSION` and add the upgrade of the previous
version here; :func:`read_record` chains them, so records of every older version stay readable.
"""


@dataclass(frozen=True)
class Provenance:
    """Where a number came from.

    Attributes:
        vpr_bench_version: Version of the harness.
        plugin_versions: ``{distribution: version}`` of the plugins involved.
        torch_version: ``torch.__version__``.
        cuda_version: ``torch.version.cuda`` or ``""`` on CPU builds.
        faiss_version: faiss version, or ``""`` when not used.
        device: E.g. ``"cpu (2 cores)"`` or ``"NVIDIA H100 80GB HBM3"``.
        git_sha: Commit of the harness checkout, or ``""``.
        time_utc: ISO-8601 UTC time of the evaluation.
        seed: The run's seed.
        config_hash: sha256 prefix of the resolved config.
        command: The exact command line that produced the record.
    """

    vpr_bench_version: str
    plugin_versions: Mapping[str, str]
    torch_version: str
    cuda_version: str
    faiss_version: str
    device: str
    git_sha: str
    time_utc: str
    seed: int
    config_hash: str
    command: str


@dataclass(frozen=True)
class Timing:
    """How long and how much memory evaluation took.

    Attributes:
        extraction_s: Seconds spent extracting descriptors; for descriptors read from the
            descriptor cache, the time measured when they were computed (0 if not stored).
        images_per_s: Extraction throughput, likewise.
        search_s: Seconds spent in kNN search.
        search_ms_per_query: ``1000 * search_s / n_queries``.
        peak_host_mb: Peak resident memory of the process in MiB.
        peak_gpu_mb: Peak CUDA memory in MiB (0 on CPU).
    """

    extraction_s: float
    images_per_s: float
    search_s: float
    search_ms_per_query: float
    peak_host_mb: float
    peak_gpu_mb: float


@dataclass(frozen=True)
class EvalRecord:
    """The result of evaluating one method (and weights) on one dataset split under one protocol.

    Attributes:
        benchmark: Leaderboard group, e.g. ``"synthcity"`` or ``"pittsburgh"``.
        method: Method name.
        checkpoint_tag: Released-weights tag, or the run name for locally trained weights,
            or ``"untrained"``.
        profile: Config profile (``"paper"``, ``"quick"``, ...) or ``""``.
        weights_sha256: sha256 of the weights file (``""`` for untrained weights).
        dataset: Dataset name.
        dataset_version: The reader's version.
        split: Split name.
        protocol: The full protocol (``EvalProtocol.to_dict()``).
        protocol_digest: ``EvalProtocol.digest()``.
        metrics: ``{"R@1": 81.2, ...}`` in percent.
        per_condition: ``{condition: {"R@1": ...}}``.
        counts: ``n_queries``, ``n_scored``, ``n_without_positive``, ``n_database``.
        descriptor_dim: Dimension of the descriptors that were searched.
        trained_on: ``--dataset`` style name of the training set, or ``""``.
        config: The fully resolved config.
        provenance: Versions, device, time, seed.
        timing: Time and memory.
        data: Which data: ``{"name", "digest", "reader"}`` of the evaluated split
            (:func:`vpr_bench.data.identity.data_identity`); empty for records written before
            schema 2.
        leaderboard: False for test-only models (never shown on leaderboards).
        schema_version: Version of this format.
    """

    benchmark: str
    method: str
    checkpoint_tag: str
    profile: str
    weights_sha256: str
    dataset: str
    dataset_version: int
    split: str
    protocol: Mapping[str, Any]
    protocol_digest: str
    metrics: Mapping[str, float]
    per_condition: Mapping[str, Mapping[str, float]]
    counts: Mapping[str, int]
    descriptor_dim: int
    trained_on: str
    config: Mapping[str, Any]
    provenance: Provenance
    timing: Timing
    data: Mapping[str, str] = dataclasses.field(default_factory=dict)
    leaderboard: bool = True
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        for name in ("protocol", "metrics", "per_condition", "counts", "config", "data"):
            # Store plain JSON values (tuples become lists) so a record equals its re-read self.
            try:
                object.__setattr__(self, name, json.loads(json.dumps(getattr(self, name))))
            except (TypeError, ValueError) as exc:
                raise RecordError(f"EvalRecord.{name} is not JSON-serialisable: {exc}") from exc
        for name in ("benchmark", "method", "dataset", "split"):
            if not getattr(self, name):
                raise RecordError(f"EvalRecord.{name} must not be empty.")
        if not isinstance(self.data, Mapping) or not all(
            key in ("name", "digest", "reader") and isinstance(value, str)
            for key, value in self.data.items()
        ):
            raise RecordError(
                "EvalRecord.data must map 'name', 'digest' and 'reader' to strings, got "
                f"{self.data!r}."
            )
        for key, value in self.metrics.items():
            if not isinstance(value, int | float) or isinstance(value, bool) or math.isnan(value):
                raise RecordError(f"EvalRecord metric {key!r} must be a number, got {value!r}.")
        if "name" not in self.protocol or "version" not in self.protocol:
            raise RecordError("EvalRecord.protocol must hold the protocol's name and version.")

    @property
    def protocol_key(self) -> str:
        """``name@vN`` of the protocol."""
        return f"{self.protocol['name']}@v{self.protocol['version']}"

    @property
    def baseline_of(self) -> str:
        """The method whose config an untrained record was made with, when not its own.

        A run's untrained baselines are records of the *model* (``disam``), each under the
        config of one method it runs (``disam-coarse``, ``disam-fine``); their tags alone
        (``untrained``, ``untrained-2213706e``) do not say which. ``""`` for trained weights
        and for a baseline under its own method's config.
        """
        source = str(self.config.get("method") or "")
        if self.weights_sha256 or source == self.method:
            return ""
        return source


def record_to_dict(record: EvalRecord) -> dict[str, Any]:
    """A JSON-ready dict of ``record`` (nested dataclasses become dicts)."""
    return dataclasses.asdict(record)


def record_path(root: Path, record: EvalRecord) -> Path:
    """The canonical location of ``record``.

    ``<root>/<benchmark>/<method>.<tag>/<dataset>.<split>.<data name>-<digest8>.json``: the
    data's name and the first 8 hex digits of its digest keep results on different data (two
    VPR-Bench folders, two synthcity sizes) in different files. Records written before schema 2
    carry no data identity and keep ``<dataset>.<split>.json``.
    """
    tag = normalize_name(record.checkpoint_tag or "untrained")
    name = f"{record.dataset}.{record.split}"
    digest = str(record.data.get("digest", ""))
    if digest:
        label = normalize_name(str(record.data.get("name", ""))) or "data"
        name += f".{label}-{digest[:8]}"
    return root / record.benchmark / f"{record.method}.{tag}" / f"{name}.json"


def write_record(record: EvalRecord, path: Path) -> Path:
    """Write ``record`` as JSON to ``path`` atomically and return the path."""
    atomic_write_json(path, record_to_dict(record))
    return path


def read_record(path: Path) -> EvalRecord:
    """Read and validate a record, migrating older schema versions.

    Raises:
        RecordError: The file is not JSON, has an unknown schema version, has unknown or
            missing keys, or impossible values (:func:`check_record_values`); the message
            names the file and the key.
    """
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RecordError(f"{path}: no such record file.") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RecordError(f"{path}: not a readable JSON record ({exc}).") from exc
    if not isinstance(raw, dict):
        raise RecordError(f"{path}: a record must be a JSON object, found {type(raw).__name__}.")
    raw = _migrate(path, raw)
    record = _build(path, raw)
    check_record_values(record, path)
    return record


PERCENT_PREFIXES = ("R@", "mAP@", "PR-AUC")
"""Metric names (by prefix) that are percentages and must lie in [0, 100]."""


def check_record_values(record: EvalRecord, path: Path) -> None:
    """Check that a record's numbers are possible and its protocol digest is its own.

    Percent metrics (:data:`PERCENT_PREFIXES`, overall and per condition) lie in [0, 100];
    every metric is finite; counts are non-negative integers with ``n_scored`` and
    ``n_without_positive`` within ``n_queries``, at least ``n_queries - n_without_positive``
    queries scored, and no condition scoring more than ``n_scored``; ``protocol_digest`` is the
    digest of the record's own ``protocol`` fields (an edited protocol cannot keep its digest).

    Raises:
        RecordError: The first violation, naming the file and the key.
    """
    tables = [("metrics", record.metrics)]
    tables += [(f"per_condition.{c}", m) for c, m in sorted(record.per_condition.items())]
    for where, metrics in tables:
        if not isinstance(metrics, Mapping):
            raise RecordError(f"{path}: {where} must be an object of metrics.")
        for key, value in metrics.items():
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise RecordError(f"{path}: {where}[{key!r}] = {value!r} is not a number.")
            if not math.isfinite(value):
                raise RecordError(f"{path}: {where}[{key!r}] = {value} is not finite.")
            if key.startswith(PERCENT_PREFIXES) and not 0 <= value <= 100:
                raise RecordError(
                    f"{path}: {where}[{key!r}] = {value} is not a percentage in [0, 100]; the "
                    "record is damaged or edited: re-run the evaluation that wrote it."
                )
    _check_counts(record.counts, path)
    digest = protocol_digest(record.protocol)
    if digest != record.protocol_digest:
        raise RecordError(
            f"{path}: protocol_digest {record.protocol_digest!r} is not the digest of the "
            f"record's own protocol fields ({digest!r}); the protocol was edited after the "
            "evaluation: re-run the evaluation that wrote it."
        )


def protocol_digest(protocol: Mapping[str, Any]) -> str:
    """The digest of a protocol's JSON fields, equal to ``EvalProtocol.digest()``."""
    payload = json.dumps(dict(protocol), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _check_counts(counts: Mapping[str, Any], path: Path) -> None:
    for key, value in counts.items():
        if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
            raise RecordError(f"{path}: counts[{key!r}] = {value!r} is not a count >= 0.")
        if value != int(value):
            raise RecordError(f"{path}: counts[{key!r}] = {value!r} is not a whole number.")
    n_queries = counts.get("n_queries")
    if n_queries is None:
        return
    n_without = counts.get("n_without_positive", 0)
    n_scored = counts.get("n_scored", n_queries)
    problems = []
    if n_without > n_queries:
        problems.append(f"n_without_positive {n_without} > n_queries {n_queries}")
    if not n_queries - n_without <= n_scored <= n_queries:
        problems.append(
            f"n_scored {n_scored} is outside [n_queries - n_without_positive, n_queries] = "
            f"[{n_queries - n_without}, {n_queries}]"
        )
    problems += [
        f"{key} {value} > n_scored {n_scored}"
        for key, value in counts.items()
        if key.startswith("n_scored [") and value > n_scored
    ]
    if problems:
        raise RecordError(
            f"{path}: inconsistent counts: {problems[0]}; the record is damaged or edited: "
            "re-run the evaluation that wrote it."
        )


def _migrate(path: Path, raw: dict[str, Any]) -> dict[str, Any]:
    version = raw.get("schema_version")
    if not isinstance(version, int):
        raise RecordError(f"{path}: missing or non-integer key 'schema_version'.")
    if version > SCHEMA_VERSION:
        raise RecordError(
            f"{path}: schema_version {version} is newer than this vpr-bench understands "
            f"({SCHEMA_VERSION}). Upgrade vpr-bench to read it."
        )
    while version < SCHEMA_VERSION:
        upgrade = MIGRATIONS.get(version)
        if upgrade is None:
            raise RecordError(
                f"{path}: schema_version {version} cannot be migrated to {SCHEMA_VERSION} "
                "(no migration is registered for it)."
            )
        raw = upgrade(dict(raw))
        version += 1
        raw["schema_version"] = version
    return raw


def _build(path: Path, raw: dict[str, Any]) -> EvalRecord:
    nested: dict[str, type] = {"provenance": Provenance, "timing": Timing}
    values: dict[str, Any] = _check_keys(path, "", EvalRecord, raw)
    for key, cls in nested.items():
        sub = values[key]
        if not isinstance(sub, dict):
            raise RecordError(f"{path}: key {key!r} must be an object.")
        values[key] = cls(**_check_keys(path, key + ".", cls, sub))
    try:
        return EvalRecord(**values)
    except RecordError as exc:
        raise RecordError(f"{path}: {exc}") from exc
    except TypeError as exc:  # pragma: no cover - guarded by _check_keys
        raise RecordError(f"{path}: {exc}") from exc


def _check_keys(path: Path, prefix: str, cls: type, raw: dict[str, Any]) -> dict[str, Any]:
    declared = {f.name: f for f in fields(cls)}
    unknown = sorted(set(raw) - set(declared))
    if unknown:
        raise RecordError(
            f"{path}: unknown key {prefix}{unknown[0]!r}"
            + (f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else "")
            + f". Valid keys: {', '.join(sorted(declared))}."
        )
    required = [
        name
        for name, f in declared.items()
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    missing = [name for name in required if name not in raw]
    if missing:
        raise RecordError(f"{path}: missing key {prefix}{missing[0]!r}.")
    return dict(raw)
