"""Published numbers ("paper" rows) and the Δ between our numbers and them.

Paper rows come from the method specs of the installed plugins: ``MethodSpec.paper`` (the
method's published table) and ``Checkpoint.reported`` (what the authors report for released
weights). A paper row names its protocol through ``PaperResult.dataset``; it is shown in every
table of that protocol name, and Δ compares one of our rows with the paper number of the same
method under the same protocol name.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vpr_bench.leaderboard.collect import SECTION_KEYS, trained_here
from vpr_bench.specs import MethodSpec, PaperResult

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["PRIMARY_METRIC", "PaperEntry", "add_paper_rows", "paper_entries"]

PRIMARY_METRIC = "R@1"
"""The metric leaderboards sort by and compute Δ on."""


@dataclass(frozen=True)
class PaperEntry:
    """One published result with the method (and checkpoint) it belongs to.

    Attributes:
        method: The method name.
        checkpoint: The checkpoint tag for ``Checkpoint.reported`` numbers, else ``""``.
        trained_on: The checkpoint's training set, else ``""`` (the paper's own setup).
        result: The published numbers.
    """

    method: str
    checkpoint: str
    trained_on: str
    result: PaperResult


def paper_entries(methods: Iterable[MethodSpec]) -> list[PaperEntry]:
    """Every published result of the leaderboard methods, checkpoint-specific ones first.

    A result listed both in ``MethodSpec.paper`` and in a checkpoint's ``reported`` appears
    once, as the checkpoint's. Methods with ``leaderboard=False`` contribute nothing.
    """
    entries: list[PaperEntry] = []
    seen: set[tuple[str, str, str, str, tuple[tuple[str, float], ...]]] = set()
    for method in sorted(methods, key=lambda m: m.name):
        if not method.leaderboard:
            continue
        candidates = [
            PaperEntry(method.name, ckpt.tag, ckpt.trained_on, result)
            for ckpt in method.checkpoints
            for result in ckpt.reported
        ]
        candidates += [PaperEntry(method.name, "", "", result) for result in method.paper]
        for entry in candidates:
            r = entry.result
            key = (method.name, r.dataset, r.source, r.variant, tuple(sorted(r.metrics.items())))
            if key not in seen:
                seen.add(key)
                entries.append(entry)
    return entries


def add_paper_rows(
    frame: pd.DataFrame,
    entries: Iterable[PaperEntry],
    resolve_dataset: Callable[[str], str] | None = None,
) -> pd.DataFrame:
    """Add paper rows to every table of their protocol, and Δ columns to our rows.

    Args:
        frame: Our rows, from :func:`vpr_bench.leaderboard.collect.records_frame`.
        entries: Published results, from :func:`paper_entries`.
        resolve_dataset: See :func:`vpr_bench.leaderboard.collect.trained_here`.

    Returns:
        ``frame`` with paper rows appended (``kind == "paper"``, ``source`` and ``variant``
        set) and two new columns: ``delta`` (ours − paper on :data:`PRIMARY_METRIC`, NaN where
        either is missing) and ``delta_source`` (the paper source it was computed against).
    """
    import pandas as pd

    entries = list(entries)
    frame = frame.copy()
    deltas: list[float] = []
    delta_sources: list[str] = []
    for _, row in frame.iterrows():
        reference = _reference(row, entries)
        ours = row.get(PRIMARY_METRIC, math.nan)
        if reference is None or _missing(ours):
            deltas.append(math.nan)
            delta_sources.append("")
            continue
        deltas.append(float(ours) - float(reference.result.metrics[PRIMARY_METRIC]))
        delta_sources.append(reference.result.source)
    frame["delta"] = deltas
    frame["delta_source"] = delta_sources

    sections = frame.drop_duplicates(subset=list(SECTION_KEYS))
    new_rows: list[dict[str, Any]] = []
    for _, section in sections.iterrows():
        for entry in entries:
            if entry.result.dataset != section["protocol_name"]:
                continue
            new_rows.append(_paper_row(section, entry, resolve_dataset))
    if not new_rows:
        return frame
    papers = pd.DataFrame(new_rows)
    return pd.concat([frame, papers], ignore_index=True, sort=False)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _reference(row: Any, entries: list[PaperEntry]) -> PaperEntry | None:
    """The paper number our row is compared with: its checkpoint's, else the method's first."""
    matching = [
        e
        for e in entries
        if e.method == row["method"]
        and e.result.dataset == row["protocol_name"]
        and PRIMARY_METRIC in e.result.metrics
    ]
    for entry in matching:
        if entry.checkpoint and entry.checkpoint == row["checkpoint"]:
            return entry
    for entry in matching:
        if not entry.checkpoint:
            return entry
    return None


def _paper_row(
    section: Any, entry: PaperEntry, resolve: Callable[[str], str] | None
) -> dict[str, Any]:
    row: dict[str, Any] = {key: section[key] for key in SECTION_KEYS}
    row["data_name"] = section.get("data_name", "")
    row.update(
        {
            "kind": "paper",
            "method": entry.method,
            "checkpoint": entry.checkpoint,
            "profile": "",
            "trained_on": entry.trained_on,
            "trained_here": trained_here(entry.trained_on, str(section["dataset"]), resolve),
            "descriptor_dim": None,
            "images_per_s": 0.0,
            "device": "",
            "versions": "",
            "source": entry.result.source,
            "variant": entry.result.variant,
            "path": "",
            "protocol": section["protocol"],
            "per_condition": {},
            "delta": math.nan,
            "delta_source": "",
        }
    )
    for name, value in entry.result.metrics.items():
        row[name] = float(value)
    return row
