"""VPR-Bench folders: the real corridor set, the real mismatched oneimage GT, bad input."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tests.data.loading import load_builtin
from vpr_bench.data.geo import split_positives
from vpr_bench.errors import DataError


def test_real_corridor(shared_data: Path) -> None:
    root = shared_data / "vpr_bench" / "datasets" / "corridor"
    split = load_builtin("vprbench-folder", root)
    assert (len(split.database), len(split.queries)) == (111, 111)
    assert split.database[10].path == root / "ref" / "0000010.jpg"
    assert split.protocol is not None and split.protocol.ground_truth == "lists"
    gt = np.load(root / "ground_truth_new.npy", allow_pickle=True)
    positives = split_positives(split)
    for row, found in zip(gt, positives, strict=True):
        assert found.tolist() == sorted(row[1])
    assert {len(p) for p in positives} <= {3, 4, 5}


def test_real_oneimage_gt_is_rejected(shared_data: Path) -> None:
    root = shared_data / "vpr_bench" / "datasets" / "oneimage"
    with pytest.raises(
        DataError, match=r"ground_truth_new\.npy has 10 ground-truth rows but .*query holds 1 query"
    ):
        load_builtin("vprbench-folder", root)


def _write_gt(path: Path, rows: list[list[int]]) -> None:
    gt = np.zeros((len(rows), 2), dtype=object)
    for i, refs in enumerate(rows):
        gt[i, 0], gt[i, 1] = i, refs
    np.save(path, gt)


def test_int_sorting_and_no_match_rows(tmp_path: Path, jpeg_writer: Callable[..., Path]) -> None:
    for i in (0, 2, 10):  # non-padded names: 10 must sort after 2
        jpeg_writer(tmp_path / "ref" / f"{i}.jpg", colour=i)
    jpeg_writer(tmp_path / "query" / "0.jpg")
    jpeg_writer(tmp_path / "query" / "1.JPG")
    _write_gt(tmp_path / "ground_truth_new.npy", [[2, 1], [-1]])
    split = load_builtin("vprbench-folder", tmp_path)
    assert [r.path.name for r in split.database] == ["0.jpg", "2.jpg", "10.jpg"]
    assert [p.tolist() for p in split_positives(split)] == [[1, 2], []]


def test_bad_folders(tmp_path: Path, jpeg_writer: Callable[..., Path]) -> None:
    with pytest.raises(DataError, match=r"ref does not exist"):
        load_builtin("vprbench-folder", tmp_path)
    jpeg_writer(tmp_path / "ref" / "0.jpg")
    jpeg_writer(tmp_path / "query" / "first.jpg")
    with pytest.raises(DataError, match=r"image names must be integers .*'first\.jpg'"):
        load_builtin("vprbench-folder", tmp_path)
    (tmp_path / "query" / "first.jpg").rename(tmp_path / "query" / "0.jpg")
    with pytest.raises(DataError, match=r"Missing .*ground_truth_new\.npy"):
        load_builtin("vprbench-folder", tmp_path)
    _write_gt(tmp_path / "ground_truth_new.npy", [[5]])
    with pytest.raises(DataError, match=r"query 0 lists reference 5, but ref/ holds only 1"):
        load_builtin("vprbench-folder", tmp_path)
    (tmp_path / "ground_truth_new.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(DataError, match="it is damaged"):
        load_builtin("vprbench-folder", tmp_path)


def _nordland_folder(tmp_path: Path, shared_data: Path) -> Path:
    """VPR-Bench's Nordland layout: the real ground truth, empty stand-ins for the 30 352 images
    (the loader lists names and never decodes; the real images are 3.6 GB)."""
    root = tmp_path / "Nordland"
    for folder, count in (("ref", 27592), ("query", 2760)):
        (root / folder).mkdir(parents=True)
        for i in range(count):
            (root / folder / f"{i:07d}.jpg").touch()
    (root / "ground_truth_new.npy").symlink_to(
        shared_data / "vpr_bench" / "datasets" / "Nordland" / "ground_truth_new.npy"
    )
    return root


def test_nordland_1f_on_the_real_ground_truth(tmp_path: Path, shared_data: Path) -> None:
    from vpr_bench.data.check import EXPECTED_COUNTS

    split = load_builtin("nordland-1f", _nordland_folder(tmp_path, shared_data))
    assert (len(split.database), len(split.queries)) == EXPECTED_COUNTS[split.name]
    assert split.name == "nordland-1f-test"
    protocol = split.protocol
    assert protocol is not None and protocol.name == "nordland-1f"
    assert (protocol.ground_truth, protocol.no_positive) == ("lists", "fail")
    positives = split_positives(split)
    assert positives[0].tolist() == [0, 1]  # frame 0 has no frame -1
    assert positives[1].tolist() == [9, 10, 11]
    assert positives[2759].tolist() == [27589, 27590, 27591]


def test_nordland_1f_refuses_another_vprbench_folder(shared_data: Path) -> None:

    expected = r"query 0 lists references \[0, 1, 2\], but nordland-1f expects frames within one"
    with pytest.raises(DataError, match=expected):
        load_builtin("nordland-1f", shared_data / "vpr_bench" / "datasets" / "corridor")
