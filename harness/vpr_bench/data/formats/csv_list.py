"""The plain CSV format for your own images (dataset ``csv-folder``).

A folder holds two files with the same header::

    <root>/database.csv
    <root>/queries.csv

    path,easting,northing,condition
    images/db/0001.jpg,584825.96,4476945.61,
    images/q/0001.jpg,584830.10,4476950.02,night

* ``path``: the image, relative to ``<root>`` (an absolute path is used as is).
* ``easting``, ``northing``: metric coordinates (UTM metres, or any local metric frame); the
  ground truth is every database image within 25 m.
* ``condition`` (optional column, values may be empty): an appearance label; per-condition R@N
  is reported for the queries when present.

Other columns are ignored, and so are extra fields at the end of a row (more fields than the
header names). A UTF-8 byte-order mark (as spreadsheet programs write) is accepted. Rows keep
their file order (database index = row order).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from vpr_bench.data.formats import require_dir, split_manifest
from vpr_bench.data.split import GeoSplit, ImageRecord
from vpr_bench.errors import DataError

__all__ = ["REQUIRED_COLUMNS", "load_csv_folder", "read_csv_list"]

REQUIRED_COLUMNS = ("path", "easting", "northing")


def read_csv_list(csv_path: Path, base: Path) -> tuple[ImageRecord, ...]:
    """Read one ``path,easting,northing[,condition]`` file; relative paths are under ``base``.

    Raises:
        DataError: Missing file or columns, text that is not UTF-8, a non-numeric position, or
            no rows.
    """
    if not csv_path.is_file():
        raise DataError(
            f"Missing {csv_path}: a csv-folder dataset needs database.csv and queries.csv with "
            f"the header {','.join(REQUIRED_COLUMNS)}[,condition]."
        )
    try:
        records = _read_rows(csv_path, base)
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{csv_path} is not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8 "
            "CSV (spreadsheet programs offer 'CSV UTF-8')."
        ) from None
    if not records:
        raise DataError(f"{csv_path} has a header but no image rows.")
    return tuple(records)


def _read_rows(csv_path: Path, base: Path) -> list[ImageRecord]:
    with csv_path.open(newline="", encoding="utf-8-sig") as handle:  # -sig: a BOM is dropped
        reader = csv.DictReader(handle)  # extra fields of a row go under the key None
        columns = [c.strip() for c in (reader.fieldnames or [])]
        missing = [c for c in REQUIRED_COLUMNS if c not in columns]
        if missing:
            raise DataError(
                f"{csv_path} lacks the column(s) {', '.join(missing)}: its header is "
                f"{','.join(columns) or '(empty)'}; the first line must be "
                f"{','.join(REQUIRED_COLUMNS)}[,condition]."
            )
        records = []
        for line_no, raw in enumerate(reader, start=2):
            row = {k.strip(): (v or "").strip() for k, v in raw.items() if isinstance(k, str)}
            try:
                easting, northing = float(row["easting"]), float(row["northing"])
            except ValueError:
                raise DataError(
                    f"{csv_path}, line {line_no}: easting/northing must be numbers, got "
                    f"{row['easting']!r}, {row['northing']!r}."
                ) from None
            if not (math.isfinite(easting) and math.isfinite(northing)):
                raise DataError(f"{csv_path}, line {line_no}: the position is not finite.")
            if not row["path"]:
                raise DataError(f"{csv_path}, line {line_no}: the path is empty.")
            path = Path(row["path"])
            records.append(
                ImageRecord(
                    path=path if path.is_absolute() else base / path,
                    easting=easting,
                    northing=northing,
                    condition=row.get("condition") or None,
                )
            )
    return records


def load_csv_folder(root: Path, split: str = "test") -> GeoSplit:
    """Load a csv-folder dataset: ``database.csv`` and ``queries.csv`` in ``root``.

    Raises:
        DataError: See :func:`read_csv_list`.
    """
    if split != "test":
        raise DataError(f"csv-folder has only the split 'test', not {split!r}.")
    root = require_dir(
        Path(root), "csv-folder root", "Pass --root <folder with database.csv and queries.csv>."
    )
    database = read_csv_list(root / "database.csv", root)
    queries = read_csv_list(root / "queries.csv", root)
    return GeoSplit(
        name=f"csv-folder-{root.name}",
        database=database,
        queries=queries,
        root=root,
        manifest=split_manifest(database, queries, root),
    )
