"""VPR-Bench folders: ``ref/``, ``query/``, ``ground_truth_new.npy`` (docs/datasets.md section 8).

Layout::

    <root>/ref/0000000.jpg ...          database, sorted by int(stem)
    <root>/query/0000000.jpg ...        queries, sorted by int(stem)
    <root>/ground_truth_new.npy         object (Nq, 2): row i = [i, [ref indices]]; [-1] = no match

VPR-Bench globs only ``*.jpg``; we accept ``.jpg``/``.jpeg``/``.png`` in any case, with stems
that parse as integers (``0.jpg`` and ``0000000.jpg`` both work). The ground truth is explicit,
so there are no positions (easting/northing stay NaN).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vpr_bench.data.formats import IMAGE_SUFFIXES, require_dir, split_manifest
from vpr_bench.data.formats.safe_npy import load_object_npy
from vpr_bench.data.split import GeoSplit, ImageRecord
from vpr_bench.errors import DataError

__all__ = ["load_nordland_1f", "load_vprbench_folder", "read_ground_truth", "sorted_int_images"]

GT_FILE = "ground_truth_new.npy"


def sorted_int_images(folder: Path) -> list[Path]:
    """The images of ``folder`` sorted by the integer value of their stem.

    Raises:
        DataError: The folder is missing or empty, or a stem is not an integer.
    """
    folder = require_dir(
        folder, "VPR-Bench image folder", "A VPR-Bench dataset holds ref/ and query/ folders."
    )
    images = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
    if not images:
        raise DataError(f"{folder} holds no .jpg/.jpeg/.png image.")
    bad = [p.name for p in images if not p.stem.lstrip("-").isdigit()]
    if bad:
        raise DataError(
            f"{folder}: image names must be integers (e.g. 0000000.jpg), got {sorted(bad)[:3]}; "
            "VPR-Bench indexes images by the number in their name."
        )
    return sorted(images, key=lambda p: int(p.stem))


def read_ground_truth(path: Path, n_queries: int, n_refs: int) -> tuple[tuple[int, ...], ...]:
    """Read ``ground_truth_new.npy``: one tuple of reference indices per query (-1 kept).

    Raises:
        DataError: The file is missing, malformed or would run code when unpickled, its row
            count differs from the queries, or it names references that do not exist.
    """
    if not path.is_file():
        raise DataError(f"Missing {path}: a VPR-Bench dataset ships its ground truth there.")
    # The real format is an object array of Python lists written by Python 2 (pickle protocol
    # 2); a restricted unpickler reads it without running any code a crafted file names.
    gt = load_object_npy(path)
    if gt.ndim != 2 or gt.shape[1] != 2:
        raise DataError(
            f"{path}: expected an object array of shape (n_queries, 2) with rows "
            f"[query index, [ref indices]], got shape {gt.shape}."
        )
    if len(gt) != n_queries:
        raise DataError(
            f"{path} has {len(gt)} ground-truth rows but {path.parent / 'query'} holds "
            f"{n_queries} query images; the ground truth does not belong to these images. "
            "Use the ground_truth_new.npy of this dataset or put back the missing queries."
        )
    rows: list[tuple[int, ...]] = []
    for i, (index, refs) in enumerate(gt):
        try:
            values = tuple(int(r) for r in np.atleast_1d(np.asarray(refs)).ravel())
            if int(index) != i:
                raise ValueError(f"row {i} is labelled query {index}")
        except (TypeError, ValueError) as exc:
            raise DataError(f"{path}: row {i} is malformed ({exc}).") from exc
        out_of_range = [r for r in values if r != -1 and not 0 <= r < n_refs]
        if out_of_range:
            raise DataError(
                f"{path}: query {i} lists reference {out_of_range[0]}, but ref/ holds only "
                f"{n_refs} images (0..{n_refs - 1})."
            )
        rows.append(values)
    return tuple(rows)


def load_vprbench_folder(root: Path, split: str = "test") -> GeoSplit:
    """Load a VPR-Bench dataset folder (``ref/`` database, ``query/`` queries, GT lists).

    Raises:
        DataError: Missing folders, non-integer names, or ground truth that does not fit.
    """
    root = Path(root)
    return _load(root, split, "vprbench-folder", f"vprbench-folder-{root.name}")


NORDLAND_FRAME_STEP = 10
"""VPR-Bench's Nordland keeps every frame as a reference and every 10th frame as a query."""


def load_nordland_1f(root: Path, split: str = "test") -> GeoSplit:
    """Load VPR-Bench's Nordland (``Nordland/ref``, ``query``, ``ground_truth_new.npy``).

    The ``nordland-1f`` protocol (protocols.md): query ``i`` is frame ``10 i`` of one season, the
    references are every frame of the other, and its true matches are the frames within one
    (refs ``10 i - 1 .. 10 i + 1``, as the real ground truth lists them). A ground-truth file of
    another shape is refused, so a different VPR-Bench folder is never scored as Nordland.

    Raises:
        DataError: Missing files, or ground truth that is not Nordland's +-1 frame lists.
    """
    gt_file = Path(root) / GT_FILE
    loaded = _load(Path(root), split, "nordland-1f", "nordland-1f-test")
    step = NORDLAND_FRAME_STEP
    assert loaded.positives is not None
    for i, refs in enumerate(loaded.positives):
        allowed = {step * i - 1, step * i, step * i + 1}
        if not refs or not set(refs) <= allowed:
            raise DataError(
                f"{gt_file}: query {i} lists references {list(refs)[:5]}, but "
                f"nordland-1f expects frames within one of {step * i} ({sorted(allowed)}). This "
                "is not VPR-Bench's Nordland ground truth; load other VPR-Bench folders as "
                "vprbench-folder."
            )
    return loaded


def _load(root: Path, split: str, dataset: str, name: str) -> GeoSplit:
    if split != "test":
        raise DataError(f"{dataset} has only the split 'test', not {split!r}.")
    root = require_dir(Path(root), "VPR-Bench dataset root", "Pass --root <folder with ref/>.")
    refs = sorted_int_images(root / "ref")
    query_paths = sorted_int_images(root / "query")
    positives = read_ground_truth(root / GT_FILE, len(query_paths), len(refs))
    database = tuple(ImageRecord(path=p, place_id=p.stem) for p in refs)
    queries = tuple(ImageRecord(path=p) for p in query_paths)
    return GeoSplit(
        name=name,
        database=database,
        queries=queries,
        root=root,
        positives=positives,
        manifest=split_manifest(database, queries, root),
        extras={"ground_truth_file": str(root / GT_FILE)},
    )
