"""NetVLAD ``dbStruct`` .mat files: Pittsburgh 30k/250k, Tokyo 24/7 and Tokyo Time Machine.

Root layout (the Nanne/pytorch-NetVlad convention, docs/datasets.md section 1.1)::

    <root>/datasets/pitts30k_test.mat    (or <root>/pitts30k_test.mat)
    <root>/000/000829_pitch1_yaw1.jpg    database images, 000/ ... 010/
    <root>/queries_real/000/...jpg       query images

    <root>/datasets/tokyo247.mat         (or <root>/tokyo247.mat)
    <root>/03814/<e>_<n>/<pano>_012_<yaw>.png   database (the .mat says .jpg)
    <root>/247query_subset_v2/00010.jpg  queries (also accepted: 247query_v3/, query/)

    <root>/datasets/tokyoTM_val.mat      (or <root>/tokyoTM_val.mat)
    <root>/images/<xx>/<pano>/_<YYYYMM>/...jpg  database and queries (or directly under <root>)

Listing names and positions never opens an image; ``vpr-bench data check`` does that.
Both ``loadmat`` access styles (default structured arrays, and ``squeeze_me=True,
struct_as_record=False`` objects) are accepted by :func:`parse_dbstruct`. Integer fields are
converted with ``int(x.item())`` before any arithmetic: MATLAB stores them as uint8/uint16, and
``uint8(25) ** 2`` wraps to 113.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vpr_bench.builtin.datasets import protocol_for
from vpr_bench.data.formats import require_dir, split_manifest
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
    "read_dbstruct",
]

FIELDS_10 = (
    "whichSet",
    "dbImageFns",
    "utmDb",
    "qImageFns",
    "utmQ",
    "numImages",
    "numQueries",
    "posDistThr",
    "posDistSqThr",
    "nonTrivPosDistSqThr",
)
FIELDS_12 = (
    "whichSet",
    "dbImageFns",
    "utmDb",
    "dbTimeStamp",
    "qImageFns",
    "utmQ",
    "qTimeStamp",
    "numImages",
    "numQueries",
    "posDistThr",
    "posDistSqThr",
    "nonTrivPosDistSqThr",
)

_PITTS_NAME = re.compile(r"^\d{3}/\d{6}_pitch[12]_yaw([1-9]|1[0-2])\.jpg$")
_TOKYO247_DB_NAME = re.compile(r"^\d{5}/[^/]+/[^/]+\.(jpg|png)$")
_TOKYO247_QUERY_NAME = re.compile(r"^\d{5}\.jpg$")
_TOKYOTM_NAME = re.compile(r"^[^/]{2}/[^/]+/_\d{6}/[^/]+\.jpg$")
_TOKYO247_QUERY_DIRS = ("247query_subset_v2", "247query_v3", "query", "queries")
_DOWNLOAD_HINT = (
    "The spec files come from the NetVLAD release netvlad_v100_datasets.tar.gz; unpack it into "
    "<root>/datasets/."
)


@dataclass(frozen=True)
class DbStruct:
    """The content of a NetVLAD ``dbStruct``, normalised to plain Python/numpy types.

    Attributes:
        path: The .mat file it came from.
        which_set: ``"train"``, ``"val"`` or ``"test"``.
        db_names: Database image names relative to the database root.
        utm_db: ``[N, 2]`` float64 database (easting, northing).
        q_names: Query image names relative to the query root.
        utm_q: ``[Q, 2]`` float64 query positions.
        num_images: ``numImages`` as a Python int.
        num_queries: ``numQueries`` as a Python int.
        pos_dist_thr: ``posDistThr`` in metres (25).
        pos_dist_sq_thr: ``posDistSqThr`` in m^2 (625).
        nontriv_pos_dist_sq_thr: ``nonTrivPosDistSqThr`` in m^2 (100).
        db_timestamps: TokyoTM ``dbTimeStamp`` as ``YYYYMM`` strings, else None.
        q_timestamps: TokyoTM ``qTimeStamp`` as ``YYYYMM`` strings, else None.
    """

    path: Path
    which_set: str
    db_names: tuple[str, ...]
    utm_db: np.ndarray
    q_names: tuple[str, ...]
    utm_q: np.ndarray
    num_images: int
    num_queries: int
    pos_dist_thr: float
    pos_dist_sq_thr: float
    nontriv_pos_dist_sq_thr: float
    db_timestamps: tuple[str, ...] | None = None
    q_timestamps: tuple[str, ...] | None = None


def read_dbstruct(path: Path) -> DbStruct:
    """Read and validate a NetVLAD dbStruct .mat file.

    Raises:
        DataError: The file is missing, truncated, not a MATLAB v5 file, has no ``dbStruct``, or
            its fields disagree with each other.
    """
    from scipy.io import loadmat

    path = Path(path)
    if not path.is_file():
        raise DataError(f"NetVLAD spec file {path} does not exist. {_DOWNLOAD_HINT}")
    try:
        mat = loadmat(str(path))
    except Exception as exc:  # scipy raises ValueError/TypeError/OSError for broken files
        raise DataError(
            f"Cannot read {path} as a MATLAB v5 .mat file ({type(exc).__name__}: {exc}); it is "
            f"truncated or not a NetVLAD spec file. Download it again. {_DOWNLOAD_HINT}"
        ) from exc
    if "dbStruct" not in mat:
        keys = sorted(k for k in mat if not k.startswith("__"))
        raise DataError(
            f"{path} holds no variable 'dbStruct' (it has {keys}); it is not a NetVLAD dataset "
            f"spec file. {_DOWNLOAD_HINT}"
        )
    return parse_dbstruct(mat["dbStruct"], path)


def _field_names(raw: Any) -> tuple[str, ...]:
    names = getattr(raw, "_fieldnames", None)
    if names is not None:
        return tuple(names)
    dtype_names = getattr(getattr(raw, "dtype", None), "names", None)
    return tuple(dtype_names or ())


def _field(raw: Any, name: str) -> Any:
    if hasattr(raw, "_fieldnames"):
        return getattr(raw, name)
    return raw[name].reshape(-1)[0]


def _to_str(value: Any) -> str:
    if isinstance(value, np.ndarray):
        flat = value.ravel()
        return "" if flat.size == 0 else str(flat[0])
    return str(value)


def _to_names(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    return tuple(_to_str(v) for v in np.asarray(value, dtype=object).ravel())


def _to_utm(value: Any) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    if array.size == 0:
        return np.empty((0, 2), dtype=np.float64)
    if array.ndim == 1 and array.shape[0] == 2:
        array = array.reshape(2, 1)
    if array.ndim != 2 or array.shape[0] != 2:
        raise ValueError(f"expected a (2, N) UTM array, got shape {array.shape}")
    return np.ascontiguousarray(array.T)


def _to_int(value: Any) -> int:
    return int(np.asarray(value).item())


def parse_dbstruct(raw: Any, source: Path) -> DbStruct:
    """Normalise a loaded ``dbStruct`` (either loadmat access style) to a :class:`DbStruct`.

    Args:
        raw: ``loadmat(p)["dbStruct"]`` (a (1,1) structured array) or
            ``loadmat(p, squeeze_me=True, struct_as_record=False)["dbStruct"]`` (a mat_struct).
        source: The file it came from, for messages.

    Raises:
        DataError: Unknown field layout or inconsistent counts.
    """
    names = _field_names(raw)
    if set(names) not in (set(FIELDS_10), set(FIELDS_12)):
        raise DataError(
            f"{source}: dbStruct has fields {list(names)}, expected the 10 NetVLAD fields "
            f"{list(FIELDS_10)} (Pittsburgh, Tokyo 24/7) or those plus dbTimeStamp/qTimeStamp "
            f"(TokyoTM). {_DOWNLOAD_HINT}"
        )
    try:
        has_time = "dbTimeStamp" in names
        db_ts = q_ts = None
        if has_time:
            db_ts = tuple(str(int(t)) for t in np.asarray(_field(raw, "dbTimeStamp")).ravel())
            q_ts = tuple(str(int(t)) for t in np.asarray(_field(raw, "qTimeStamp")).ravel())
        db = DbStruct(
            path=source,
            which_set=_to_str(_field(raw, "whichSet")),
            db_names=_to_names(_field(raw, "dbImageFns")),
            utm_db=_to_utm(_field(raw, "utmDb")),
            q_names=_to_names(_field(raw, "qImageFns")),
            utm_q=_to_utm(_field(raw, "utmQ")),
            num_images=_to_int(_field(raw, "numImages")),
            num_queries=_to_int(_field(raw, "numQueries")),
            pos_dist_thr=float(_to_int(_field(raw, "posDistThr"))),
            pos_dist_sq_thr=float(_to_int(_field(raw, "posDistSqThr"))),
            nontriv_pos_dist_sq_thr=float(_to_int(_field(raw, "nonTrivPosDistSqThr"))),
            db_timestamps=db_ts,
            q_timestamps=q_ts,
        )
    except (ValueError, TypeError, IndexError) as exc:
        raise DataError(
            f"{source}: a dbStruct field has an unexpected shape or type ({exc}); the file is "
            f"damaged. {_DOWNLOAD_HINT}"
        ) from exc
    _check_consistent(db)
    return db


def _check_consistent(db: DbStruct) -> None:
    problems = []
    if len(db.db_names) != db.num_images or len(db.utm_db) != db.num_images:
        problems.append(
            f"numImages={db.num_images} but {len(db.db_names)} dbImageFns and "
            f"{len(db.utm_db)} utmDb columns"
        )
    if len(db.q_names) != db.num_queries or len(db.utm_q) != db.num_queries:
        problems.append(
            f"numQueries={db.num_queries} but {len(db.q_names)} qImageFns and "
            f"{len(db.utm_q)} utmQ columns"
        )
    if db.db_timestamps is not None and len(db.db_timestamps) != db.num_images:
        problems.append(f"{len(db.db_timestamps)} dbTimeStamp for {db.num_images} images")
    if db.q_timestamps is not None and len(db.q_timestamps) != db.num_queries:
        problems.append(f"{len(db.q_timestamps)} qTimeStamp for {db.num_queries} queries")
    if problems:
        raise DataError(f"{db.path}: inconsistent dbStruct: {'; '.join(problems)}.")


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
        f"Missing {filename}: looked for {candidates[0]} and {candidates[1]}. {_DOWNLOAD_HINT}"
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
    name: str, db: DbStruct, dataset: str, split: str, root: Path, records: Any
) -> GeoSplit:
    database, queries = records
    protocol = protocol_for(dataset, split)
    return GeoSplit(
        name=name,
        database=tuple(database),
        queries=tuple(queries),
        protocol=protocol,
        root=root,
        manifest=split_manifest(database, queries, root),
        extras={
            "mat_file": str(db.path),
            "which_set": db.which_set,
            "pos_dist_thr": db.pos_dist_thr,
            "pos_dist_sq_thr": db.pos_dist_sq_thr,
            "nontriv_pos_dist_sq_thr": db.nontriv_pos_dist_sq_thr,
        },
    )


def _check_split(dataset: str, split: str, allowed: tuple[str, ...]) -> None:
    if split not in allowed:
        raise DataError(f"{dataset} has splits {list(allowed)}, not {split!r}.")


def _load_pitts(root: Path, split: str, dataset: str) -> GeoSplit:
    _check_split(dataset, split, ("train", "val", "test"))
    root = require_dir(Path(root), f"{dataset} root", "Pass --root <folder with 000/ ... 010/>.")
    db = read_dbstruct(find_mat(root, f"{dataset}_{split}.mat"))
    _check_kind(db, dataset, split, _PITTS_NAME)
    query_root = root / "queries_real"
    database = [
        ImageRecord(root / n, e, nn, place_id=n.split("_", 1)[0])
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
    place id is the location folder ``<block>/<e>_<n>`` (the unit of place NMS).
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
    queries = [
        ImageRecord(query_dir / n, e, nn)
        for n, (e, nn) in zip(db.q_names, db.utm_q.tolist(), strict=True)
    ]
    return _finish(f"tokyo247-{split}", db, "tokyo247", split, root, (database, queries))


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
