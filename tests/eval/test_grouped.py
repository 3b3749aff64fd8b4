"""Per-group kNN (MSLS per-city retrieval): hand-computed rankings and the runner end to end."""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from tests.eval.jobs import run_job
from vpr_bench import get_registries
from vpr_bench.data.split import GeoSplit, ImageRecord
from vpr_bench.errors import DataError, UsageError
from vpr_bench.eval.evaluate import recompute_metrics
from vpr_bench.eval.grouped import grouped_knn, retrieval_groups
from vpr_bench.eval.search import knn
from vpr_bench.eval.write import EvalOutcome
from vpr_bench.specs import ModelSpec

INF = np.float32(np.inf)


def _col(values: list[float]) -> np.ndarray:
    """1-D descriptors as a ``[n, 1]`` float32 array (integer values: exact distances)."""
    return np.asarray(values, dtype=np.float32)[:, None]


def test_two_interleaved_groups_keep_global_indices_and_ties_in_database_order() -> None:
    database = _col([0, 1, 2, 3, 4, 5])
    db_groups = ["a", "b", "a", "b", "a", "b"]
    # q0 (group a) ties at distance 1 with db 0 and db 2 (db 1, at distance 0, is group b);
    # q1 (group b) ties at distance 1 with db 3 and db 5 (db 4, at distance 0, is group a).
    idx, dist = grouped_knn(
        _col([1, 4]), database, 2, query_groups=["a", "b"], db_groups=db_groups, device="cpu"
    )
    assert idx.dtype == np.int64 and dist.dtype == np.float32
    np.testing.assert_array_equal(idx, [[0, 2], [3, 5]])
    np.testing.assert_array_equal(dist, [[1, 1], [1, 1]])
    # k = 3: the whole group, in distance order (ties in database order).
    idx, dist = grouped_knn(
        _col([1, 4]), database, 3, query_groups=["a", "b"], db_groups=db_groups, device="cpu"
    )
    np.testing.assert_array_equal(idx, [[0, 2, 4], [3, 5, 1]])
    np.testing.assert_array_equal(dist, [[1, 1, 3], [1, 1, 3]])


def test_k_larger_than_a_group_pads_with_minus_one_and_inf() -> None:
    database = _col([0, 10, 20, 30])
    db_groups = ["a", "a", "b", "a"]
    idx, dist = grouped_knn(
        _col([12, 12]), database, 3, query_groups=["a", "b"], db_groups=db_groups, device="cpu"
    )
    np.testing.assert_array_equal(idx, [[1, 0, 3], [2, -1, -1]])
    np.testing.assert_array_equal(dist, [[2, 12, 18], [8, INF, INF]])
    # k above the whole database: clamped to N = 4 columns, as knn clamps.
    idx, dist = grouped_knn(
        _col([12, 12]), database, 10, query_groups=["a", "b"], db_groups=db_groups, device="cpu"
    )
    np.testing.assert_array_equal(idx, [[1, 0, 3, -1], [2, -1, -1, -1]])
    np.testing.assert_array_equal(dist, [[2, 12, 18, INF], [8, INF, INF, INF]])


def test_query_group_without_database_items_gets_a_padding_row() -> None:
    idx, dist = grouped_knn(
        _col([3, 3, 7]),
        _col([0, 5, 9]),
        2,
        query_groups=["x", "nowhere", "x"],
        db_groups=["x", "x", "x"],
        device="cpu",
    )
    np.testing.assert_array_equal(idx, [[1, 0], [-1, -1], [1, 2]])
    np.testing.assert_array_equal(dist, [[2, 3], [INF, INF], [2, 2]])


def test_one_group_equals_plain_knn_for_numpy_torch_and_read_only_inputs() -> None:
    rng = np.random.default_rng(3)
    database = rng.standard_normal((40, 8)).astype(np.float32)
    database[7] = database[30]  # a duplicate: the tie must keep database order
    queries = rng.standard_normal((9, 8)).astype(np.float32)
    ref_i, ref_d = knn(queries, database, 5, device="cpu")
    database.flags.writeable = False
    queries.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "non-writable array" warning from torch
        idx, dist = grouped_knn(
            queries, database, 5, query_groups=["g"] * 9, db_groups=["g"] * 40, device="cpu"
        )
    np.testing.assert_array_equal(idx, ref_i)
    np.testing.assert_array_equal(dist, ref_d)
    t_idx, t_dist = grouped_knn(
        torch.from_numpy(queries.copy()),
        torch.from_numpy(database.copy()),
        5,
        query_groups=["g"] * 9,
        db_groups=["g"] * 40,
        device="cpu",
    )
    np.testing.assert_array_equal(t_idx, ref_i)
    np.testing.assert_array_equal(t_dist, ref_d)


def test_torch_input_with_interleaved_groups() -> None:
    database = torch.tensor([[0.0], [1.0], [2.0], [3.0]])
    idx, _ = grouped_knn(
        torch.tensor([[1.0]]), database, 1, query_groups=[0], db_groups=[0, 1, 0, 1], device="cpu"
    )
    np.testing.assert_array_equal(idx, [[0]])  # db 1 is nearer but in group 1


def test_bad_group_lists() -> None:
    with pytest.raises(UsageError, match=r"db_groups must hold one group name per row \(3\)"):
        grouped_knn(_col([1]), _col([0, 1, 2]), 1, query_groups=["a"], db_groups=["a", "a"])
    with pytest.raises(UsageError, match="query_groups must hold .* got a string"):
        grouped_knn(_col([1]), _col([0, 1, 2]), 1, query_groups="a", db_groups=["a"] * 3)
    with pytest.raises(UsageError, match="k must be a positive integer"):
        grouped_knn(_col([1]), _col([0]), 0, query_groups=["a"], db_groups=["a"])


def _split(extras: dict[str, object]) -> GeoSplit:
    rec = ImageRecord(path=Path("x.jpg"), easting=0.0, northing=0.0)
    return GeoSplit(name="toy-val", database=(rec, rec), queries=(rec,), extras=extras)


def test_retrieval_groups_of_a_split() -> None:
    groups = {"db_groups": ("a", "b"), "query_groups": ("b",)}
    assert retrieval_groups(_split(groups)) is None
    assert retrieval_groups(_split({**groups, "retrieval_within_groups": False})) is None
    on = {**groups, "retrieval_within_groups": True}
    assert retrieval_groups(_split(on)) == (("b",), ("a", "b"))
    with pytest.raises(DataError, match=r"extras\['db_groups'\] has 1 group names for 2 images"):
        retrieval_groups(_split({**on, "db_groups": ("a",)}))
    with pytest.raises(DataError, match=r"extras\['query_groups'\] is NoneType"):
        retrieval_groups(_split({"retrieval_within_groups": True, "db_groups": ("a", "b")}))


# --- end to end: a tiny MSLS root (official CSV layout) through the evaluation runner ---------

ORIGIN = {"cph": (720000.0, 6170000.0), "sf": (550000.0, 4180000.0)}
RAW_HEADER = ["", "key", "lon", "lat", "ca", "captured_at", "pano"]
POST_HEADER = ["", "key", "easting", "northing", "unique_cluster", "night", "view_direction"]
RED, GREEN, BLUE, YELLOW = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)
BLUISH = (90, 0, 255)  # nearest to sf's blue image, but nearer to red than to green


def _write_side(side: Path, rows: list[tuple[str, float, float, tuple[int, int, int]]]) -> None:
    """raw.csv + postprocessed.csv (pandas-style unnamed index column) and the JPEGs."""
    (side / "images").mkdir(parents=True)
    with (
        (side / "raw.csv").open("w", newline="") as raw,
        (side / "postprocessed.csv").open("w", newline="") as post,
    ):
        raw_w, post_w = csv.writer(raw), csv.writer(post)
        raw_w.writerow(RAW_HEADER)
        post_w.writerow(POST_HEADER)
        for i, (key, east, north, colour) in enumerate(rows):
            raw_w.writerow([i, key, 0.0, 0.0, 0.0, "2018-06-01", False])
            post_w.writerow([i, key, east, north, 0, False, "Forward"])
            Image.new("RGB", (16, 12), colour).save(side / "images" / f"{key}.jpg", quality=100)


@pytest.fixture(scope="module")
def msls_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """cph db [red, green], sf db [blue, yellow] (global 0..3); 100 m apart within a city.

    cph query (bluish) stands 5 m from cph's red image: its only positive is db 0. Over the
    merged database its nearest descriptor is sf's blue (db 2). sf query (yellow) stands 5 m
    from sf's yellow image (db 3).
    """
    root = tmp_path_factory.mktemp("msls")
    for city, db_colours, q_colour, q_place in (
        ("cph", (RED, GREEN), BLUISH, 0),
        ("sf", (BLUE, YELLOW), YELLOW, 1),
    ):
        e0, n0 = ORIGIN[city]
        city_dir = root / "train_val" / city
        db_rows = [(f"{city}db{i}", e0 + 100.0 * i, n0, c) for i, c in enumerate(db_colours)]
        _write_side(city_dir / "database", db_rows)
        _write_side(
            city_dir / "query", [(f"{city}q0", e0 + 100.0 * q_place + 3.0, n0 + 4.0, q_colour)]
        )
    return root


class MeanColour(nn.Module):
    """Descriptor = L2-normalised mean colour."""

    descriptor_dim = 3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x.mean(dim=(2, 3)), dim=1)


SPEC = ModelSpec(name="mean-colour", build=lambda cfg: MeanColour(), config_cls=dict)


def _evaluate_msls(root: Path, split: str, out: Path) -> EvalOutcome:
    return run_job(MeanColour(), SPEC, "msls", split, root, out)


def test_evaluation_retrieves_within_the_query_city(msls_root: Path, tmp_path: Path) -> None:
    outcome = _evaluate_msls(msls_root, "val", tmp_path)
    record = outcome.record
    assert record.config["evaluation"]["retrieval_within_groups"] is True
    predictions, metrics, _ = recompute_metrics(
        outcome.predictions_path, list(get_registries().evaluators)
    )
    knn_idx = predictions.result.knn_idx
    # cph query: only cph items (0, 1), never sf's nearer blue image; padded after them.
    np.testing.assert_array_equal(knn_idx[0], [0, 1, -1, -1])
    np.testing.assert_array_equal(knn_idx[1], [3, 2, -1, -1])
    assert np.isinf(predictions.result.knn_dist[:, 2:]).all()
    assert record.metrics["R@1"] == pytest.approx(100.0)
    assert metrics == dict(record.metrics)

    merged = _evaluate_msls(msls_root, "val-merged", tmp_path).record
    assert merged.config["evaluation"]["retrieval_within_groups"] is False
    assert merged.metrics["R@1"] == pytest.approx(50.0)  # cph's top-1 is sf's blue image
