from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vpr_bench.errors import DataError
from vpr_bench.eval.predictions import (
    decode_positives,
    encode_positives,
    load_predictions,
    relative_names,
    save_predictions,
)
from vpr_bench.protocol import EvalProtocol, ResizePolicy
from vpr_bench.runtime import RetrievalResult

PROTOCOL = EvalProtocol("demo-test", query_resize=ResizePolicy.shorter_side(64), place_nms=True)


def _result() -> RetrievalResult:
    return RetrievalResult(
        knn_idx=np.array([[2, 0, 1], [1, 2, 0]], dtype=np.int64),
        knn_dist=np.array([[0.1, 0.5, 0.9], [0.2, 0.3, 0.4]], dtype=np.float32),
        positives=(np.array([0, 2], dtype=np.int64), np.array([], dtype=np.int64)),
        n_database=3,
        query_conditions=("night", None),
        db_place_ids=("p0", "p0", "p1"),
    )


def test_positives_flat_offsets_round_trip() -> None:
    positives = (np.array([3, 5]), np.array([], dtype=np.int64), np.array([1]))
    flat, offsets = encode_positives(positives)
    assert flat.tolist() == [3, 5, 1] and offsets.tolist() == [0, 2, 2, 3]
    decoded = decode_positives(flat, offsets)
    assert [d.tolist() for d in decoded] == [[3, 5], [], [1]]
    empty_flat, empty_offsets = encode_positives(())
    assert empty_flat.size == 0 and empty_offsets.tolist() == [0]


def test_relative_names(tmp_path: Path) -> None:
    names = relative_names([tmp_path / "q" / "a.jpg", Path("/elsewhere/b.jpg")], tmp_path)
    assert names == ["q/a.jpg", "/elsewhere/b.jpg"]


def test_save_load_round_trip_without_pickles(tmp_path: Path) -> None:
    path = save_predictions(
        tmp_path / "sub" / "p.npz",
        result=_result(),
        protocol=PROTOCOL,
        query_names=["q/0.jpg", "q/1.jpg"],
        db_names=["d/0.jpg", "d/1.jpg", "d/2.jpg"],
        counts={"n_queries": 2, "n_scored": 2},
        metrics={"R@1": 50.0},
        per_condition={"night": {"R@1": 0.0}},
        meta={"root": str(tmp_path), "method": "m"},
    )
    with np.load(path, allow_pickle=False) as raw:  # loads with pickles disabled
        assert raw["positives_offsets"].tolist() == [0, 2, 2]
    loaded = load_predictions(path)
    np.testing.assert_array_equal(loaded.result.knn_idx, _result().knn_idx)
    np.testing.assert_array_equal(loaded.result.knn_dist, _result().knn_dist)
    assert [p.tolist() for p in loaded.result.positives] == [[0, 2], []]
    assert loaded.result.query_conditions == ("night", None)
    assert loaded.result.db_place_ids == ("p0", "p0", "p1")
    assert loaded.result.query_timestamps is None and loaded.result.n_database == 3
    assert loaded.protocol == PROTOCOL
    assert loaded.metrics == {"R@1": 50.0} and loaded.per_condition == {"night": {"R@1": 0.0}}
    assert loaded.query_paths() == [tmp_path / "q/0.jpg", tmp_path / "q/1.jpg"]
    assert loaded.meta["method"] == "m"


def test_name_count_mismatch_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="1 query names"):
        save_predictions(
            tmp_path / "p.npz",
            result=_result(),
            protocol=PROTOCOL,
            query_names=["a"],
            db_names=["x", "y", "z"],
            counts={},
            metrics={},
            per_condition={},
            meta={},
        )


def test_bad_files_are_data_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_predictions(tmp_path / "none.npz")
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(DataError, match="not a predictions .npz"):
        load_predictions(tmp_path / "junk.npz")
    np.savez(tmp_path / "other.npz", knn_idx=np.zeros((1, 1)))
    with pytest.raises(DataError, match="missing entry 'knn_dist'"):
        load_predictions(tmp_path / "other.npz")
