"""Mapillary Street-Level Sequences (docs/datasets.md section 4).

Layout (the official package, all archives extracted into one folder)::

    <root>/train_val/<city>/database/{raw.csv, postprocessed.csv, images/<key>.jpg}
    <root>/train_val/<city>/query/{raw.csv, postprocessed.csv, images/<key>.jpg}

The CSVs are pandas-written (an unnamed index column first). ``raw.csv`` gives ``key`` and
``pano`` (panoramas are dropped, as the official reader does); ``postprocessed.csv`` gives the
UTM ``easting``/``northing`` and ``night`` (the query condition: ``night`` or ``day``). The rows
of the two files align one to one.

Splits: ``val`` (cities cph and sf, retrieval within each city: protocol msls-val), ``val-merged``
(the same images, one merged database: msls-val-merged) and ``train`` (the 22 training cities
that are present). Ground truth is computed per city (``extras["db_groups"]`` /
``extras["query_groups"]``), because the cities lie in different UTM zones. Queries without a
positive within 25 m stay in the split; the protocols exclude them from R@N (for the real val
set 740 of the 747 non-panorama queries are scored).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from vpr_bench.data.formats import require_dir, split_manifest
from vpr_bench.data.split import GeoSplit, ImageRecord
from vpr_bench.errors import DataError

__all__ = ["TRAIN_CITIES", "VAL_CITIES", "load_msls", "read_city_side"]

logger = logging.getLogger(__name__)

VAL_CITIES = ("cph", "sf")
TRAIN_CITIES = (
    "trondheim",
    "london",
    "boston",
    "melbourne",
    "amsterdam",
    "helsinki",
    "tokyo",
    "toronto",
    "saopaulo",
    "moscow",
    "zurich",
    "paris",
    "bangkok",
    "budapest",
    "austin",
    "berlin",
    "ottawa",
    "phoenix",
    "goa",
    "amman",
    "nairobi",
    "manila",
)
_RAW_COLUMNS = ("key", "pano")
_POST_COLUMNS = ("key", "easting", "northing")


def _as_bool(value: Any, path: Path, column: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise DataError(f"{path}: column {column} holds {value!r}; expected True or False.")


def _read_csv(path: Path, required: tuple[str, ...]) -> Any:
    import pandas as pd

    if not path.is_file():
        raise DataError(
            f"Missing {path}: MSLS metadata comes from metadata.zip of the official release; "
            "extract it into the dataset root so that train_val/<city>/<side>/ holds the CSVs."
        )
    try:
        frame = pd.read_csv(path, index_col=0)
    except Exception as exc:  # pandas raises ParserError/UnicodeDecodeError/EmptyDataError
        raise DataError(f"Cannot parse {path} as CSV ({type(exc).__name__}: {exc}).") from exc
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DataError(
            f"{path} lacks the column(s) {', '.join(missing)} (it has {list(frame.columns)}); "
            "is it the official MSLS file?"
        )
    return frame


def read_city_side(city_dir: Path, side: str) -> tuple[ImageRecord, ...]:
    """Read the non-panorama images of one city's ``database`` or ``query`` side.

    Raises:
        DataError: Missing CSVs or columns, or raw.csv and postprocessed.csv disagree.
    """
    side_dir = city_dir / side
    raw_path, post_path = side_dir / "raw.csv", side_dir / "postprocessed.csv"
    raw = _read_csv(raw_path, _RAW_COLUMNS)
    post = _read_csv(post_path, _POST_COLUMNS)
    if len(raw) != len(post) or list(raw["key"]) != list(post["key"]):
        raise DataError(
            f"{raw_path} ({len(raw)} rows) and {post_path} ({len(post)} rows) do not list the "
            "same keys in the same order; re-extract the metadata of this city."
        )
    night_col = list(post["night"]) if "night" in post.columns else [None] * len(post)
    stamps = list(raw["captured_at"]) if "captured_at" in raw.columns else [None] * len(raw)
    records = []
    for key, pano, east, north, night, stamp in zip(
        raw["key"], raw["pano"], post["easting"], post["northing"], night_col, stamps, strict=True
    ):
        if _as_bool(pano, raw_path, "pano"):
            continue
        condition = (
            None if night is None else "night" if _as_bool(night, post_path, "night") else "day"
        )
        try:
            easting, northing = float(east), float(north)
        except (TypeError, ValueError):
            raise DataError(f"{post_path}: key {key} has a non-numeric easting/northing.") from None
        records.append(
            ImageRecord(
                path=side_dir / "images" / f"{key}.jpg",
                easting=easting,
                northing=northing,
                condition=condition,
                timestamp=None if stamp is None else str(stamp).replace("-", "") or None,
            )
        )
    return tuple(records)


def _cities(train_val: Path, split: str) -> tuple[str, ...]:
    if split in ("val", "val-merged"):
        missing = [c for c in VAL_CITIES if not (train_val / c).is_dir()]
        if missing:
            raise DataError(
                f"MSLS {split} needs the cities {list(VAL_CITIES)}; missing "
                f"{[str(train_val / c) for c in missing]}."
            )
        return VAL_CITIES
    present = tuple(c for c in TRAIN_CITIES if (train_val / c).is_dir())
    if not present:
        raise DataError(
            f"No MSLS training city under {train_val} (expected e.g. {train_val}/london)."
        )
    absent = [c for c in TRAIN_CITIES if c not in present]
    if absent:
        logger.warning("MSLS train: %d cities are absent and skipped: %s", len(absent), absent)
    return present


def load_msls(root: Path, split: str) -> GeoSplit:
    """Load MSLS split ``val``, ``val-merged`` or ``train``.

    Raises:
        DataError: A missing folder, CSV or column (the message names the file).
    """
    if split not in ("train", "val", "val-merged"):
        raise DataError(f"msls has splits ['train', 'val', 'val-merged'], not {split!r}.")
    root = require_dir(Path(root), "MSLS root", "Pass --root <folder with train_val/>.")
    train_val = require_dir(
        root / "train_val", "MSLS folder", "The MSLS root must hold train_val/<city>/."
    )
    database: list[ImageRecord] = []
    queries: list[ImageRecord] = []
    db_groups: list[str] = []
    query_groups: list[str] = []
    for city in _cities(train_val, split):
        city_db = read_city_side(train_val / city, "database")
        city_q = read_city_side(train_val / city, "query")
        database += city_db
        queries += city_q
        db_groups += [city] * len(city_db)
        query_groups += [city] * len(city_q)
    return GeoSplit(
        name=f"msls-{split}",
        database=tuple(database),
        queries=tuple(queries),
        root=root,
        manifest=split_manifest(database, queries, root),
        extras={
            "db_groups": tuple(db_groups),
            "query_groups": tuple(query_groups),
            "retrieval_within_groups": split == "val",
        },
    )
