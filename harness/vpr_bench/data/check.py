"""``vpr-bench data check``: does every file a split lists exist (and decode), do counts match.

The readers list names and positions from metadata alone; this module is where the image files
themselves are checked. Missing files are reported grouped by folder with the first few names,
so that a missing archive (one whole folder) reads as one line.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from vpr_bench.data.split import GeoSplit, ImageRecord
from vpr_bench.errors import DataError

__all__ = ["EXPECTED_COUNTS", "CheckReport", "check_split"]

EXPECTED_COUNTS: dict[str, tuple[int, int]] = {
    "pitts30k-train": (10000, 7416),
    "pitts30k-val": (10000, 7608),
    "pitts30k-test": (10000, 6816),
    "pitts250k-train": (91464, 7824),
    "pitts250k-val": (78648, 7608),
    "pitts250k-test": (83952, 8280),
    "tokyo247-test": (75984, 315),
    "tokyo247-vg": (75984, 315),
    "tokyotm-train": (49104, 7277),
    "tokyotm-val": (49056, 7186),
    "msls-val": (18871, 747),
    "msls-val-merged": (18871, 747),
    "nordland-1f-test": (27592, 2760),
}
"""(database, queries) of the real releases (shared/data/README.md; MSLS: 740 of the 747
non-panorama val queries have a positive)."""


@dataclass
class CheckReport:
    """The outcome of checking one split on disk.

    Attributes:
        split: The split name.
        n_database: Database images the split lists.
        n_queries: Queries the split lists.
        expected: The (database, queries) counts of the real release, when known.
        missing: Missing files by folder (sorted names), database and queries together.
        unreadable: ``(path, reason)`` of files that exist but do not decode (``--decode``).
        decoded: Whether the files were decoded.
        query_conditions: Queries per condition label (empty when none is labelled).
        conditions_hint: How to get condition labels when the split has none but can.
    """

    split: str
    n_database: int
    n_queries: int
    expected: tuple[int, int] | None = None
    missing: dict[str, list[str]] = field(default_factory=dict)
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    decoded: bool = False
    query_conditions: dict[str, int] = field(default_factory=dict)
    conditions_hint: str = ""

    @property
    def n_missing(self) -> int:
        """Number of missing files."""
        return sum(len(names) for names in self.missing.values())

    @property
    def counts_ok(self) -> bool:
        """True when the counts equal the real release's (or none are known)."""
        return self.expected is None or self.expected == (self.n_database, self.n_queries)

    @property
    def ok(self) -> bool:
        """True when nothing is missing or unreadable and the counts match."""
        return not self.missing and not self.unreadable and self.counts_ok

    def lines(self, max_names: int = 3, max_folders: int = 20) -> list[str]:
        """A human-readable report, one line per item."""
        out = [f"{self.split}: {self.n_database} database images, {self.n_queries} queries"]
        if self.expected is not None:
            verdict = "match" if self.counts_ok else "DO NOT match"
            out.append(
                f"  counts {verdict} the release ({self.expected[0]} database, "
                f"{self.expected[1]} queries)"
            )
        if self.query_conditions:
            counts = ", ".join(f"{c} {n}" for c, n in sorted(self.query_conditions.items()))
            out.append(f"  query conditions: {counts}")
        elif self.conditions_hint:
            out.append(f"  query conditions: none labelled ({self.conditions_hint})")
        if self.missing:
            out.append(f"  {self.n_missing} missing file(s) in {len(self.missing)} folder(s):")
            for folder in sorted(self.missing)[:max_folders]:
                names = self.missing[folder]
                shown = ", ".join(names[:max_names]) + (", ..." if len(names) > max_names else "")
                out.append(f"    {folder}/  {len(names)} missing: {shown}")
            if len(self.missing) > max_folders:
                out.append(f"    ... and {len(self.missing) - max_folders} more folder(s)")
        for path, reason in self.unreadable[:20]:
            out.append(f"  unreadable: {path} ({reason})")
        if len(self.unreadable) > 20:
            out.append(f"  ... and {len(self.unreadable) - 20} more unreadable file(s)")
        if self.ok:
            checked = "exist and decode" if self.decoded else "exist"
            out.append(f"  OK: all {self.n_database + self.n_queries} files {checked}")
        return out


def _records(split: GeoSplit) -> Iterable[ImageRecord]:
    yield from split.database
    yield from split.queries


def _conditions_hint(split: GeoSplit) -> str:
    """Where a split that can take a condition list but has none wants it (reader extras)."""
    wanted = split.extras.get("conditions_list_at")
    if not wanted or split.extras.get("conditions_file"):
        return ""
    return (
        f"for per-condition R@N add {wanted}, one label per query; "
        f"format: python -m pydoc vpr_bench.data.conditions"
    )


def check_split(split: GeoSplit, decode: bool = False, progress: bool = True) -> CheckReport:
    """Check that every image of ``split`` exists (and decodes, with ``decode``).

    Args:
        split: A loaded split.
        decode: Also decode every image with Pillow (slow on big sets).
        progress: Show progress (a bar on a terminal, else one log line at the end).

    Returns:
        The report; ``report.ok`` is False when anything is missing or the counts differ.
    """
    from vpr_bench.progress import progress as show_progress

    report = CheckReport(
        split=split.name,
        n_database=len(split.database),
        n_queries=len(split.queries),
        expected=EXPECTED_COUNTS.get(split.name),
        decoded=decode,
        query_conditions=dict(Counter(q.condition for q in split.queries if q.condition)),
        conditions_hint=_conditions_hint(split),
    )
    total = report.n_database + report.n_queries
    bar = show_progress(total, f"checking {split.name}", "img", enabled=progress)
    seen: set[Path] = set()
    for record in _records(split):
        bar.update(1)
        path = record.path
        if path in seen:
            continue
        seen.add(path)
        if not path.is_file():
            report.missing.setdefault(str(path.parent), []).append(path.name)
        elif decode:
            from vpr_bench.data.images import decode_uint8

            try:
                decode_uint8(path)  # the decoder evaluation and training use
            except DataError as exc:
                report.unreadable.append((str(path), str(exc.__cause__ or exc)))
    bar.close()
    for names in report.missing.values():
        names.sort()
    return report
