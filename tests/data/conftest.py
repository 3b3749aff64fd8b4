"""Fixtures of the dataset-reader tests: real .mat roots, and writers of format-exact fixtures."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(scope="session")
def mat_root(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Nanne-layout root whose datasets/ is the real netvlad_datasets_mat folder (no images)."""
    root = tmp_path_factory.mktemp("netvlad_root")
    (root / "datasets").symlink_to(shared_data / "netvlad_datasets_mat")
    return root


def write_dbstruct(
    path: Path,
    which_set: str,
    db_names: Sequence[str],
    utm_db: np.ndarray,
    q_names: Sequence[str],
    utm_q: np.ndarray,
    timestamps: tuple[Sequence[int], Sequence[int]] | None = None,
    num_images: int | None = None,
) -> Path:
    """Write a dbStruct .mat exactly as the NetVLAD release lays it out (datasets.md recipe)."""
    from scipy.io import savemat

    def cells(names: Sequence[str]) -> np.ndarray:
        out = np.empty((len(names), 1), dtype=object)
        for i, name in enumerate(names):
            out[i, 0] = name
        return out

    n_db = len(db_names) if num_images is None else num_images
    count = np.int32 if n_db >= 65536 else np.uint16
    fields: dict[str, object] = {"whichSet": which_set, "dbImageFns": cells(db_names)}
    fields["utmDb"] = np.asarray(utm_db, dtype=np.float64).T.copy()
    if timestamps is not None:
        fields["dbTimeStamp"] = np.asarray(timestamps[0], dtype=np.int32).reshape(1, -1)
    fields["qImageFns"] = cells(q_names)
    fields["utmQ"] = np.asarray(utm_q, dtype=np.float64).T.copy()
    if timestamps is not None:
        fields["qTimeStamp"] = np.asarray(timestamps[1], dtype=np.int32).reshape(1, -1)
    fields["numImages"] = count(n_db)
    fields["numQueries"] = np.uint16(len(q_names))
    fields["posDistThr"] = np.uint8(25)
    fields["posDistSqThr"] = np.uint16(625)
    fields["nonTrivPosDistSqThr"] = np.uint8(100)
    path.parent.mkdir(parents=True, exist_ok=True)
    savemat(str(path), {"dbStruct": fields})
    return path


def write_jpeg(path: Path, size: tuple[int, int] = (16, 12), colour: int = 0) -> Path:
    """Write a tiny solid-colour JPEG (width, height) at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (colour % 256, (3 * colour) % 256, (7 * colour) % 256)).save(path)
    return path


@pytest.fixture()
def dbstruct_writer() -> Callable[..., Path]:
    """:func:`write_dbstruct` as a fixture."""
    return write_dbstruct


@pytest.fixture()
def jpeg_writer() -> Callable[..., Path]:
    """:func:`write_jpeg` as a fixture."""
    return write_jpeg
