"""Rows that differ only by seed become one row: the mean, the standard deviation and n.

``vpr-bench run --seeds 0,1,2`` trains and evaluates every method once per seed, each run
writing its own record. On a board those records are one result measured n times: the row
shows each metric's mean and sample standard deviation (n - 1 in the denominator) over the
seeds, and says which seeds. Rows group when they share the table, the method, the profile,
the training set, the kind of weights (trained by a run, or untrained) and the whole resolved
config apart from the seed and the device. Released checkpoints never group (their weights do
not depend on a seed), and a group of one stays an ordinary row.
"""

from __future__ import annotations

import json
import math
import re
import statistics
from typing import TYPE_CHECKING, Any

from vpr_bench.config import config_hash
from vpr_bench.leaderboard.collect import SECTION_KEYS

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["group_key", "group_seeds"]

_RUN_TAG = re.compile(r"^\d{8}t\d{6}z(-\d+)?$", re.IGNORECASE)
"""Tags of locally trained weights: the run folder's UTC time (``20261130T101010Z``)."""

_NOT_CONFIG = ("seed", "device")


def group_key(row: Any) -> str:
    """What a row's seed group is keyed by ("" for rows that never group)."""
    tag = str(row["checkpoint"] or "")
    if tag.startswith("untrained"):
        kind = "untrained"
    elif _RUN_TAG.match(tag):
        kind = "trained"
    else:
        return ""
    config = row.get("config")
    if not isinstance(config, dict) or row.get("seed") is None:
        return ""
    rest = {k: v for k, v in config.items() if k not in _NOT_CONFIG}
    parts = [str(row[k]) for k in SECTION_KEYS]
    parts += [str(row[k] or "") for k in ("method", "profile", "trained_on")]
    return config_hash({"row": parts, "kind": kind, "config": json.loads(json.dumps(rest))})


def group_seeds(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every seed group of our rows replaced by one aggregated row.

    An aggregated row holds the metrics' means, ``stds`` (``{metric: sample std}``), ``seeds``
    (the seeds, in order), ``seed_paths`` (their records, in that order) and ``n_seeds``; its
    per-condition results, speed and dimension are means too, and ``path`` is its first
    record's.
    """
    import pandas as pd

    if not len(frame) or "config" not in frame:
        return frame
    keys = frame.apply(group_key, axis=1)
    metric_columns = [c for c in frame.columns if "@" in c or c in ("PR-AUC",)]
    kept: list[dict[str, Any]] = []
    groups: dict[str, list[dict[str, Any]]] = {}
    for key, (_, row) in zip(keys, frame.iterrows(), strict=True):
        if key:
            groups.setdefault(key, []).append(row.to_dict())
        else:
            kept.append(row.to_dict())
    for members in groups.values():
        seeds = {int(m["seed"]) for m in members}
        if len(members) < 2 or len(seeds) != len(members):
            kept.extend(members)  # one seed, or the same seed twice: nothing to average
            continue
        kept.append(_aggregate(sorted(members, key=lambda m: int(m["seed"])), metric_columns))
    return pd.DataFrame(kept, columns=[*frame.columns, "stds", "seeds", "n_seeds", "seed_paths"])


def _aggregate(members: list[dict[str, Any]], metric_columns: list[str]) -> dict[str, Any]:
    row = dict(members[0])
    stds: dict[str, float] = {}
    for column in metric_columns:
        values = [float(m[column]) for m in members if not _missing(m.get(column))]
        if len(values) == len(members):
            row[column] = statistics.fmean(values)
            stds[column] = statistics.stdev(values)
        else:
            row[column] = math.nan
    conditions: dict[str, dict[str, float]] = {}
    for name in sorted({c for m in members for c in m["per_condition"]}):
        per = [m["per_condition"].get(name, {}) for m in members]
        metrics = set.intersection(*(set(p) for p in per))
        conditions[name] = {k: statistics.fmean(float(p[k]) for p in per) for k in sorted(metrics)}
    row["per_condition"] = conditions
    row["images_per_s"] = statistics.fmean(float(m["images_per_s"]) for m in members)
    row["checkpoint"] = f"{len(members)} seeds"
    row["stds"] = stds
    row["seeds"] = [int(m["seed"]) for m in members]
    row["seed_paths"] = [str(m["path"]) for m in members]
    row["n_seeds"] = len(members)
    return row


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
