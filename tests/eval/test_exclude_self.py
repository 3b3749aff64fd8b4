"""Protocols that exclude each query's own image (``exclude_self``), checked on a toy split and
against DaCo's ``recall`` oracle (A->B, B->A and A<->B with self excluded)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from vpr_bench.data.geo import self_indices, split_positives
from vpr_bench.data.split import GeoSplit, ImageRecord
from vpr_bench.eval.metrics import drop_self, recall_at_n, required_k
from vpr_bench.protocol import EvalProtocol
from vpr_bench.runtime import RetrievalResult
from vpr_bench.train.validate import recall_at

RANKS = (1, 2, 4, 8)


def test_exclude_self_is_recorded_only_when_set() -> None:
    plain = EvalProtocol("demo-test", recall_ns=RANKS)
    assert "exclude_self" not in plain.to_dict()  # older protocols keep their digests
    own = EvalProtocol("demo-cross", recall_ns=RANKS, exclude_self=True)
    assert own.to_dict()["exclude_self"] is True and own.digest() != plain.digest()
    assert EvalProtocol.from_dict(own.to_dict()) == own
    assert EvalProtocol.from_dict(plain.to_dict()) == plain
    assert required_k(own) == required_k(plain) + 1


def test_drop_self_removes_only_the_own_image_and_keeps_the_depth() -> None:
    idx = np.array([[0, 2, 1], [2, 0, 1], [1, 0, 2]], dtype=np.int64)
    dist = np.array([[0.0, 1.0, 2.0], [0.5, 0.7, 0.9], [0.0, 0.3, 0.4]], dtype=np.float32)
    out_idx, out_dist = drop_self(idx, dist, np.array([0, 1, -1]))
    assert out_idx.tolist() == [[2, 1, -1], [2, 0, -1], [1, 0, 2]]
    assert out_dist[0].tolist() == [1.0, 2.0, np.inf] and (out_dist[2] == dist[2]).all()


def _record(name: str) -> ImageRecord:
    return ImageRecord(Path("/data") / name)


def _splits(n: int) -> dict[str, GeoSplit]:
    """DaCo's three val protocols over n place pairs a_i / b_i."""
    a = tuple(_record(f"a/{i:03d}.jpg") for i in range(n))
    b = tuple(_record(f"b/{i:03d}.jpg") for i in range(n))
    both = a + b
    lists = "lists"
    return {
        "ab": GeoSplit(
            "toy-ab",
            b,
            a,
            EvalProtocol("toy-ab", split="ab", ground_truth=lists, recall_ns=RANKS),
            positives=tuple((i,) for i in range(n)),
        ),
        "ba": GeoSplit(
            "toy-ba",
            a,
            b,
            EvalProtocol("toy-ba", split="ba", ground_truth=lists, recall_ns=RANKS),
            positives=tuple((i,) for i in range(n)),
        ),
        "cross": GeoSplit(
            "toy-cross",
            both,
            both,
            EvalProtocol(
                "toy-cross", split="cross", ground_truth=lists, recall_ns=RANKS, exclude_self=True
            ),
            positives=tuple(((i + n) % (2 * n),) for i in range(2 * n)),
        ),
    }


def test_self_indices_match_by_path() -> None:
    split = _splits(3)["cross"]
    assert self_indices(split).tolist() == list(range(6))
    assert self_indices(_splits(3)["ab"]).tolist() == [-1, -1, -1]


def test_a_query_that_is_its_own_nearest_neighbour_is_not_counted() -> None:
    """Without exclude_self every query would find itself first (R@1 = 0 for A<->B)."""
    split = _splits(2)["cross"]
    vectors = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.99, 0.141], [0.141, 0.99]])
    got = recall_at(vectors, vectors, split, split_positives(split))
    assert got["R@1"] == pytest.approx(100.0)
    protocol = split.protocol
    assert protocol is not None
    plain = EvalProtocol("toy-cross-plain", split="cross", ground_truth="lists", recall_ns=RANKS)
    idx = np.tile(np.arange(4), (4, 1))
    result = RetrievalResult(
        knn_idx=idx,
        knn_dist=np.zeros((4, 4), dtype=np.float32),
        positives=split_positives(split),
        n_database=4,
    )
    # Ranking 0, 1, 2, 3 for every query: only query 2 (positive 0) hits at rank 1.
    assert recall_at_n(result, plain)["R@1"] == pytest.approx(25.0)


def test_daco_recall_oracle_through_the_protocols(shared_oracles: Path) -> None:
    """``utils.recall`` of DaCo: acc_a (A->B), acc_b (B->A), acc (A<->B, self excluded)."""
    with np.load(shared_oracles / "daco_losses.npz") as z:
        vectors = torch.from_numpy(z["recall_vectors"].astype(np.float32))
        expected = {
            "ab": z["recall__acc_a"],
            "ba": z["recall__acc_b"],
            "cross": z["recall__acc"],
        }
        assert tuple(int(r) for r in z["ranks"]) == RANKS
    n = vectors.shape[0] // 2
    splits = _splits(n)
    queries = {"ab": vectors[:n], "ba": vectors[n:], "cross": vectors}
    database = {"ab": vectors[n:], "ba": vectors[:n], "cross": vectors}
    for name, split in splits.items():
        got = recall_at(queries[name], database[name], split, split_positives(split))
        values = np.array([got[f"R@{r}"] for r in RANKS]) / 100.0
        np.testing.assert_allclose(values, expected[name], rtol=0, atol=1e-6, err_msg=name)
