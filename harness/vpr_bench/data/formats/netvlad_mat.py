"""NetVLAD ``dbStruct`` .mat files: Pittsburgh 30k/250k, Tokyo 24/7 and Tokyo Time Machine.

Root layout (the Nanne/pytorch-NetVlad convention, docs/datasets.md section 1.1)::

    <root>/datasets/pitts30k_test.mat    (or <root>/pitts30k_test.mat)
    <root>/000/000829_pitch1_yaw1.jpg    database images, 000/ ... 010/
    <root>/queries_real/000/...jpg       query images

Pittsburgh in the OpenIBL/ClusVPR layout is recognised too (``<root>`` may also be ``raw/``)::

    <root>/raw/pitts30k_test.mat
    <root>/raw/Pittsburgh/images/000/...jpg    database images
    <root>/raw/Pittsburgh/queries/000/...jpg   query images

    <root>/datasets/tokyo247.mat         (or <root>/tokyo247.mat)
    <root>/03814/<e>_<n>/<pano>_012_<yaw>.png   database (the .mat says .jpg)
    <root>/247query_subset_v2/00010.jpg  queries (also accepted: 247query_v3/, query/)
    <root>/tokyo247_conditions.csv       optional day/sunset/night label per query
                                         (or <root>/datasets/...; see vpr_bench.data.conditions)

    <root>/datasets/tokyoTM_val.mat      (or <root>/tokyoTM_val.mat)
    <root>/images/<xx>/<pano>/_<YYYYMM>/...jpg  database and queries (or directly under <root>)

Listing names and positions never opens an image; ``vpr-bench data check`` does that. The
struct itself is parsed by :mod:`.dbstruct`; this module checks that a file belongs to the
dataset asked for and builds the split.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from vpr_bench.data.conditions import read_condition_list
from vpr_bench.data.formats import require_dir, split_manifest
from vpr_bench.data.formats.dbstruct import DOWNLOAD_HINT, DbStruct, parse_dbstruct, read_dbstruct
from vpr_bench.data.split import GeoSplit, ImageRecord
from vpr_bench.errors import DataError

__all__ = [
    "DbStruct",
    "find_mat",
    "load_pitts30k",
    "load_pitts250k",
    "load_tokyo247",
    "load_tokyotm",
    "parse_dbstruct",
    "pitts_layout",
    "read_dbstruct",
]

_PITTS_NAME = re.compile(r"^\d{3}/\d{6}_pitch[12]_yaw([1-9]|1[0-2])\.jpg$")
_TOKYO247_DB_NAME = re.compile(r"^\d{5}/[^/]+/[^/]+\.(jpg|png)$")
_TOKYO247_QUERY_NAME = re.compile(r"^\d{5}\.jpg$")
_TOKYOTM_NAME = re.compile(r"^[^/]{2}/[^/]+/_\d{6}/[^/]+\.jpg$")
_TOKYO247_QUERY_DIRS = ("247query_subset_v2", "247query_v3", "query", "queries")
TOKYO247_CONDITIONS_FILE = "tokyo247_conditions.csv"
TOKYO247_CONDITIONS = ("day", "sunset", "night")


def find_mat(root: Path, filename: str) -> Path:
    """Find ``filename`` in ``<root>/datasets/`` or ``<root>/``.

    Raises:
        DataError: Neither exists; the message names both places.
    """
    candidates = (root / "datasets" / filename, root / filename)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise DataError(
        f"Missing {filename}: looked for {candidates[0]} and {candidates[1]}. {DOWNLOAD_HINT}"
    )


def _check_kind(
    db: DbStruct,
    dataset: str,
    split: str,
    pattern: re.Pattern[str],
    query_pattern: re.Pattern[str] | None = None,
) -> None:
    timed = dataset == "tokyotm"
    if timed != (db.db_timestamps is not None):
        layout = "TokyoTM (12 fields)" if db.db_timestamps is not None else "10-field"
        raise DataError(
            f"{db.path} is a {layout} dbStruct, which is not a {dataset} spec file; check that "
            f"the file given for {dataset} is the right one."
        )
    checks = [(n, pattern) for n in db.db_names[:1]]
    checks += [(n, query_pattern or pattern) for n in db.q_names[:1]]
    for name, expected in checks:
        if not expected.match(name):
            raise DataError(
                f"{db.path}: image name {name!r} does not look like {dataset} (expected names "
                f"matching {expected.pattern}); this .mat belongs to another dataset."
            )
    if db.which_set != split:
        raise DataError(
            f"{db.path}: whichSet is {db.which_set!r} but split {split!r} was asked for; the "
            f"file is misnamed or the wrong split was given."
        )


def _finish(
    name: str,
    db: DbStruct,
    dataset: str,
    split: str,
    root: Path,
    records: Any,
    extras: dict[str, object] | None = None,
) -> GeoSplit:
    database, queries = records
    return GeoSplit(
        name=name,
        database=tuple(database),
        queries=tuple(queries),
        root=root,
        manifest=split_manifest(database, queries, root),
        extras={
            "mat_file": str(db.path),
            "which_set": db.which_set,
            "pos_dist_thr": db.pos_dist_thr,
            "pos_dist_sq_thr": db.pos_dist_sq_thr,
            "nontriv_pos_dist_sq_thr": db.nontriv_pos_dist_sq_thr,
            **(extras or {}),
        },
    )


def _check_split(dataset: str, split: str, allowed: tuple[str, ...]) -> None:
    if split not in allowed:
        raise DataError(f"{dataset} has splits {list(allowed)}, not {split!r}.")


def pitts_layout(root: Path, filename: str) -> tuple[Path, Path, Path]:
    """``(mat file, database image root, query image root)`` of a Pittsburgh folder.

    The OpenIBL layout is used when ``<root>/raw/Pittsburgh`` (or ``<root>/Pittsburgh``) exists,
    else the Nanne layout.

    Raises:
        DataError: The .mat file is not where the layout keeps it.
    """
    for base in (root / "raw", root):
        if (base / "Pittsburgh").is_dir():
            mat = base / filename
            if not mat.is_file():
                raise DataError(
                    f"Missing {filename}: {root} has the OpenIBL layout ({base / 'Pittsburgh'}), "
                    f"which keeps it at {mat}. {DOWNLOAD_HINT}"
                )
            return mat, base / "Pittsburgh" / "images", base / "Pittsburgh" / "queries"
    return find_mat(root, filename), root, root / "queries_real"


def _load_pitts(root: Path, split: str, dataset: str) -> GeoSplit:
    _check_split(dataset, split, ("train", "val", "test"))
    root = require_dir(Path(root), f"{dataset} root", "Pass --root <folder with 000/ ... 010/>.")
    mat, db_root, query_root = pitts_layout(root, f"{dataset}_{split}.mat")
    db = read_dbstruct(mat)
    _check_kind(db, dataset, split, _PITTS_NAME)
    database = [
        ImageRecord(db_root / n, e, nn, place_id=n.split("_", 1)[0])
        for n, (e, nn) in zip(db.db_names, db.utm_db.tolist(), strict=True)
    ]
    queries = [
        ImageRecord(query_root / n, e, nn, place_id=n.split("_", 1)[0])
        for n, (e, nn) in zip(db.q_names, db.utm_q.tolist(), strict=True)
    ]
    return _finish(f"{dataset}-{split}", db, dataset, split, root, (database, queries))


def load_pitts30k(root: Path, split: str) -> GeoSplit:
    """Load a Pittsburgh 30k split (``train``, ``val`` or ``test``) from the Nanne layout."""
    return _load_pitts(root, split, "pitts30k")


def load_pitts250k(root: Path, split: str) -> GeoSplit:
    """Load a Pittsburgh 250k split (``train``, ``val`` or ``test``) from the Nanne layout."""
    return _load_pitts(root, split, "pitts250k")


def _tokyo_db_suffix(root: Path, names: tuple[str, ...]) -> str:
    """``.jpg`` when the database files on disk really are .jpg, else ``.png`` (the norm)."""
    if names and (root / names[0]).is_file():
        return Path(names[0]).suffix
    return ".png"


def load_tokyo247(root: Path, split: str) -> GeoSplit:
    """Load Tokyo 24/7: split ``test`` (OpenIBL protocol) or ``vg`` (datasets_vg protocol).

    The .mat lists database images as ``.jpg`` while the released files are ``.png``: the
    suffix is taken from the file that exists (``.png`` when none is there yet). The database
    place id is the location folder ``<block>/<e>_<n>`` (the unit of place NMS). Query
    conditions (``day``, ``sunset``, ``night``) come from ``tokyo247_conditions.csv`` in the
    root (or ``datasets/``) when the user has put one there; without it, queries have none.
    """
    _check_split("tokyo247", split, ("test", "vg"))
    root = require_dir(Path(root), "tokyo247 root", "Pass --root <folder with 03814/ ...>.")
    db = read_dbstruct(find_mat(root, "tokyo247.mat"))
    _check_kind(db, "tokyo247", "test", _TOKYO247_DB_NAME, _TOKYO247_QUERY_NAME)
    suffix = _tokyo_db_suffix(root, db.db_names)
    query_dir = next(
        (root / d for d in _TOKYO247_QUERY_DIRS if (root / d).is_dir()),
        root / _TOKYO247_QUERY_DIRS[0],
    )
    database = [
        ImageRecord((root / n).with_suffix(suffix), e, nn, place_id=n.rsplit("/", 1)[0])
        for n, (e, nn) in zip(db.db_names, db.utm_db.tolist(), strict=True)
    ]
    conditions_file = _find_optional(root, TOKYO247_CONDITIONS_FILE)
    conditions: tuple[str | None, ...] = (None,) * len(db.q_names)
    if conditions_file is not None:
        conditions = read_condition_list(conditions_file, db.q_names, TOKYO247_CONDITIONS)
    queries = [
        ImageRecord(query_dir / n, e, nn, condition=c)
        for n, (e, nn), c in zip(db.q_names, db.utm_q.tolist(), conditions, strict=True)
    ]
    extras: dict[str, object] = {
        "conditions_file": str(conditions_file or ""),
        "conditions_list_at": str(root / TOKYO247_CONDITIONS_FILE),
    }
    return _finish(f"tokyo247-{split}", db, "tokyo247", split, root, (database, queries), extras)


def _find_optional(root: Path, filename: str) -> Path | None:
    """``<root>/<filename>`` or ``<root>/datasets/<filename>`` when one exists, else None."""
    for candidate in (root / filename, root / "datasets" / filename):
        if candidate.is_file():
            return candidate
    return None


def load_tokyotm(root: Path, split: str) -> GeoSplit:
    """Load a Tokyo Time Machine split (``train`` or ``val``).

    Images live under ``<root>/images/`` (or ``<root>/`` directly); every query is also a
    database image, so the protocol drops same-timestamp database items. Place id = panorama
    id, timestamp = ``YYYYMM``.
    """
    _check_split("tokyotm", split, ("train", "val"))
    root = require_dir(Path(root), "tokyotm root", "Pass --root <folder with images/>.")
    db = read_dbstruct(find_mat(root, f"tokyoTM_{split}.mat"))
    _check_kind(db, "tokyotm", split, _TOKYOTM_NAME)
    image_root = root / "images" if (root / "images").is_dir() else root
    assert db.db_timestamps is not None and db.q_timestamps is not None  # _check_kind
    database = [
        ImageRecord(image_root / n, e, nn, place_id=n.split("/")[1], timestamp=t)
        for n, (e, nn), t in zip(db.db_names, db.utm_db.tolist(), db.db_timestamps, strict=True)
    ]
    queries = [
        ImageRecord(image_root / n, e, nn, place_id=n.split("/")[1], timestamp=t)
        for n, (e, nn), t in zip(db.q_names, db.utm_q.tolist(), db.q_timestamps, strict=True)
    ]
    return _finish(f"tokyotm-{split}", db, "tokyotm", split, root, (database, queries))
