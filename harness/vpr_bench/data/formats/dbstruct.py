"""The NetVLAD ``dbStruct`` inside a .mat file, normalised (docs/datasets.md section 1.2).

Both ``loadmat`` access styles (default structured arrays, and ``squeeze_me=True,
struct_as_record=False`` objects) are accepted by :func:`parse_dbstruct`. Integer fields are
converted with ``int(x.item())`` before any arithmetic: MATLAB stores them as uint8/uint16, and
``uint8(25) ** 2`` wraps to 113. The file is MATLAB v5 (not HDF5), read with scipy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vpr_bench.errors import DataError

__all__ = ["DOWNLOAD_HINT", "FIELDS_10", "FIELDS_12", "DbStruct", "parse_dbstruct", "read_dbstruct"]

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

DOWNLOAD_HINT = (
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
        raise DataError(f"NetVLAD spec file {path} does not exist. {DOWNLOAD_HINT}")
    try:
        mat = loadmat(str(path))
    except Exception as exc:  # scipy raises ValueError/TypeError/OSError for broken files
        raise DataError(
            f"Cannot read {path} as a MATLAB v5 .mat file ({type(exc).__name__}: {exc}); it is "
            f"truncated or not a NetVLAD spec file. Download it again. {DOWNLOAD_HINT}"
        ) from exc
    if "dbStruct" not in mat:
        keys = sorted(k for k in mat if not k.startswith("__"))
        raise DataError(
            f"{path} holds no variable 'dbStruct' (it has {keys}); it is not a NetVLAD dataset "
            f"spec file. {DOWNLOAD_HINT}"
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
        DataError: Unknown field layout, inconsistent counts or a non-finite position.
    """
    names = _field_names(raw)
    if set(names) not in (set(FIELDS_10), set(FIELDS_12)):
        raise DataError(
            f"{source}: dbStruct has fields {list(names)}, expected the 10 NetVLAD fields "
            f"{list(FIELDS_10)} (Pittsburgh, Tokyo 24/7) or those plus dbTimeStamp/qTimeStamp "
            f"(TokyoTM). {DOWNLOAD_HINT}"
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
            f"damaged. {DOWNLOAD_HINT}"
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
    for field, names, utm in (("utmDb", db.db_names, db.utm_db), ("utmQ", db.q_names, db.utm_q)):
        bad = np.flatnonzero(~np.isfinite(utm).all(axis=1))
        if bad.size:
            i = int(bad[0])
            raise DataError(
                f"{db.path}: {field} column {i} (0-based; {names[i]}) is ({utm[i, 0]}, "
                f"{utm[i, 1]}), not a finite position ({bad.size} such column(s)); the file is "
                f"damaged. {DOWNLOAD_HINT}"
            )
