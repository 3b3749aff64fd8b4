"""Condition lists: appearance labels for query images that a dataset's files do not carry.

Tokyo 24/7's 315 queries were taken by day, at sunset and by night, but neither the file names
nor ``tokyo247.mat`` say which (docs/datasets.md section 2.2; the ``id % 3`` rule found online
is unverified). A user who has the labels writes them in a small CSV file and the reader applies
them; per-condition R@N is then reported. Without the file, no query has a condition and no
per-condition numbers are made: a guessed label is never used.

Format (UTF-8, a header line, one query per line, ``#`` starts a comment line)::

    name,condition
    00010.jpg,day
    00011.jpg,sunset
    00012.jpg,night

``name`` is the query's name as the dataset lists it (for Tokyo 24/7 ``00010.jpg``; the stem
``00010`` is accepted too). Every query must be listed exactly once.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Collection, Sequence
from pathlib import Path

from vpr_bench.errors import DataError

__all__ = ["read_condition_list"]

_SHOWN = 3


def read_condition_list(
    path: Path, query_names: Sequence[str], allowed: Collection[str] | None = None
) -> tuple[str, ...]:
    """Read a condition list and return one label per query, in ``query_names`` order.

    Args:
        path: The CSV file (format in the module docstring).
        query_names: The split's query names, in query order (e.g. ``00010.jpg``).
        allowed: The labels the dataset knows (e.g. ``day``, ``sunset``, ``night``), or None
            for any non-empty label.

    Returns:
        The label of each query.

    Raises:
        DataError: The file cannot be read, lacks the ``name`` or ``condition`` column, names
            a query the split does not have or one twice, gives an empty or unknown label, or
            leaves queries out. The message names the file, the line and the fix.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"Cannot read the condition list {path}: {exc}") from exc
    kept = [(n, line) for n, line in enumerate(text.splitlines(), 1) if not _comment(line)]
    file_line = [n for n, _ in kept]  # reader line k (1-based) is file line file_line[k - 1]
    reader = csv.DictReader(io.StringIO("\n".join(line for _, line in kept)))
    header = [h.strip() for h in reader.fieldnames or ()]
    missing = [column for column in ("name", "condition") if column not in header]
    if missing:
        raise DataError(
            f"{path}: the header must have the columns name,condition but "
            f"{', '.join(missing)} is missing (found: {','.join(header) or 'nothing'}); the "
            f"first line should read 'name,condition'."
        )
    index = {name: i for i, name in enumerate(query_names)}
    index.update({Path(name).stem: i for i, name in enumerate(query_names)})
    labels: list[str | None] = [None] * len(query_names)
    for row in reader:
        line = file_line[reader.line_num - 1]
        cells = {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
        name, label = cells.get("name", ""), cells.get("condition", "")
        if not name and not label:
            continue
        if name not in index:
            example = query_names[0] if query_names else "?"
            raise DataError(
                f"{path}, line {line}: {name!r} is not a query of this split (query names look "
                f"like {example!r}); fix or delete the line."
            )
        if not label or (allowed is not None and label not in allowed):
            known = f"one of {', '.join(sorted(allowed))}" if allowed is not None else "non-empty"
            raise DataError(
                f"{path}, line {line}: the condition of {name!r} is {label!r}; it must be {known}."
            )
        position = index[name]
        if labels[position] is not None:
            raise DataError(
                f"{path}, line {line}: {query_names[position]!r} is listed twice; keep one line."
            )
        labels[position] = label
    unlisted = [query_names[i] for i, label in enumerate(labels) if label is None]
    if unlisted:
        raise DataError(
            f"{path} gives a condition for {len(query_names) - len(unlisted)} of "
            f"{len(query_names)} queries; {len(unlisted)} are missing, e.g. "
            f"{', '.join(unlisted[:_SHOWN])}. List every query (or remove the file to evaluate "
            f"without per-condition numbers)."
        )
    return tuple(label for label in labels if label is not None)


def _comment(line: str) -> bool:
    return line.lstrip().startswith("#")
