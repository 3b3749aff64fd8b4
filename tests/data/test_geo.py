"""Ground truth by radius: inclusive, sorted int64, per group, TokyoTM non-trivial rules."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vpr_bench.data.geo import (
    positives_within,
    split_positives,
    tokyotm_nontrivial_positives,
    training_radii,
)
from vpr_bench.data.split import GeoSplit, ImageRecord
from vpr_bench.errors import DataError
from vpr_bench.protocol import EvalProtocol

DB = np.array([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0], [10.0, 0.0], [-3.0, -4.0]])


def test_radius_is_inclusive_and_sorted() -> None:
    (hits,) = positives_within(DB[::-1].copy(), np.array([[0.0, 0.0]]), 5.0)
    assert hits.tolist() == [0, 3, 4]  # reversed: (-3,-4) and (3,4) lie exactly 5 m away
    assert hits.dtype == np.int64
    (hits,) = positives_within(DB, np.array([[0.0, 0.0]]), 4.999)
    assert hits.tolist() == [0]
    far, near = positives_within(DB, np.array([[100.0, 100.0], [6.0, 4.0]]), 5.0)
    assert far.tolist() == [] and far.dtype == np.int64
    assert near.tolist() == [1, 2]  # 3 m and 4 m; (10,0) is 5.66 m, (0,0) 7.2 m


def test_matches_brute_force_on_random_points() -> None:
    rng = np.random.default_rng(3)
    db = rng.uniform(0, 200, size=(400, 2))
    queries = rng.uniform(0, 200, size=(50, 2))
    found = positives_within(db, queries, 25.0)
    dist = np.sqrt(((queries[:, None] - db[None]) ** 2).sum(-1))
    for row, hits in zip(dist, found, strict=True):
        assert np.array_equal(hits, np.flatnonzero(row <= 25.0))


def test_empty_inputs_and_bad_shapes() -> None:
    assert positives_within(np.empty((0, 2)), np.zeros((2, 2)), 5.0)[1].tolist() == []
    assert positives_within(DB, np.empty((0, 2)), 5.0) == ()
    with pytest.raises(ValueError, match=r"\[N, 2\] array"):
        positives_within(DB[:, 0], DB, 5.0)
    with pytest.raises(DataError, match="NaN or infinite"):
        positives_within(np.array([[np.nan, 0.0]]), DB, 5.0)


def test_training_radii() -> None:
    db = np.array([[0.0, 0.0], [9.0, 0.0], [10.0, 0.0], [20.0, 0.0], [25.0, 0.0], [26.0, 0.0]])
    positives, non_negatives = training_radii(db, np.array([[0.0, 0.0]]))
    assert positives[0].tolist() == [0, 1, 2]
    assert non_negatives[0].tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="must not exceed"):
        training_radii(db, db, positive_m=30.0)


def test_tokyotm_nontrivial_positives() -> None:
    db = np.array([[0.0, 0.0], [0.5, 0.5], [6.0, 8.0], [3.0, 4.0], [10.0, 0.5]])
    db_ts = ["200907", "201001", "201001", "200907", "201001"]
    (hits,) = tokyotm_nontrivial_positives(db, np.array([[0.0, 0.0]]), db_ts, ["200907"])
    # 0: the query itself (d^2 = 0); 1: d^2 = 0.5 <= 1; 3: same month; 4: d^2 = 100.25 > 100
    assert hits.tolist() == [2]


def _records(points: list[tuple[float, float]], **kw: str) -> tuple[ImageRecord, ...]:
    return tuple(ImageRecord(Path(f"/x/{i}.jpg"), e, n, **kw) for i, (e, n) in enumerate(points))


def test_split_positives_lists_drop_minus_one() -> None:
    protocol = EvalProtocol("lists-test", ground_truth="lists", no_positive="exclude")
    split = GeoSplit(
        "t", _records([(0, 0)] * 3), _records([(0, 0)] * 2), protocol, positives=((2, 0), (-1,))
    )
    assert [p.tolist() for p in split_positives(split)] == [[0, 2], []]
    bad = GeoSplit("t", _records([(0, 0)]), _records([(0, 0)]), protocol, positives=((4,),))
    with pytest.raises(DataError, match="names database index 4, outside 0..0"):
        split_positives(bad)


def test_split_positives_radius_groups_and_timestamps() -> None:
    protocol = EvalProtocol("r-test", radius_m=25.0)
    db = _records([(0, 0), (10, 0), (0, 0)])
    split = GeoSplit(
        "g",
        db,
        _records([(0, 0), (0, 0)]),
        protocol,
        extras={"db_groups": ("a", "a", "b"), "query_groups": ("b", "a")},
    )
    # Same coordinates in two cities (zones): only the query's own city counts.
    assert [p.tolist() for p in split_positives(split)] == [[2], [0, 1]]
    timed = GeoSplit(
        "tm",
        tuple(
            ImageRecord(r.path, r.easting, r.northing, timestamp=t)
            for r, t in zip(db, ("1", "2", "1"), strict=True)
        ),
        _records([(0, 0)], timestamp="1"),
        EvalProtocol("tm-test", drop_same_timestamp=True),
    )
    assert [p.tolist() for p in split_positives(timed)] == [[1]]
    with pytest.raises(DataError, match="no evaluation protocol"):
        split_positives(GeoSplit("n", db, db))
