"""VPR-Bench folders: the real corridor set, the real mismatched oneimage GT, bad input."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from vpr_bench.data.formats.vprbench import load_vprbench_folder
from vpr_bench.data.geo import split_positives
from vpr_bench.errors import DataError


def test_real_corridor(shared_data: Path) -> None:
    root = shared_data / "vpr_bench" / "datasets" / "corridor"
    split = load_vprbench_folder(root)
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
        load_vprbench_folder(root)


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
    split = load_vprbench_folder(tmp_path)
    assert [r.path.name for r in split.database] == ["0.jpg", "2.jpg", "10.jpg"]
    assert [p.tolist() for p in split_positives(split)] == [[1, 2], []]


def test_bad_folders(tmp_path: Path, jpeg_writer: Callable[..., Path]) -> None:
    with pytest.raises(DataError, match=r"ref does not exist"):
        load_vprbench_folder(tmp_path)
    jpeg_writer(tmp_path / "ref" / "0.jpg")
    jpeg_writer(tmp_path / "query" / "first.jpg")
    with pytest.raises(DataError, match=r"image names must be integers .*'first\.jpg'"):
        load_vprbench_folder(tmp_path)
    (tmp_path / "query" / "first.jpg").rename(tmp_path / "query" / "0.jpg")
    with pytest.raises(DataError, match=r"Missing .*ground_truth_new\.npy"):
        load_vprbench_folder(tmp_path)
    _write_gt(tmp_path / "ground_truth_new.npy", [[5]])
    with pytest.raises(DataError, match=r"query 0 lists reference 5, but ref/ holds only 1"):
        load_vprbench_folder(tmp_path)
    (tmp_path / "ground_truth_new.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(DataError, match="it is damaged"):
        load_vprbench_folder(tmp_path)
