"""Tuple mining against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vpr_bench.errors import DataError
from vpr_bench.train.mining import TupleMiner, mine_tuples, pad_index_lists, training_ground_truth


def _line(values: list[float]) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32)[:, None]


def test_nearest_positive_and_hardest_negatives_when_the_pool_covers_everything() -> None:
    # Database descriptors on a line; the query sits at 0.0.
    db = _line([5.0, 0.4, 0.1, 3.0, 0.2, 2.0, 0.3])
    q = _line([0.0])
    positives = pad_index_lists([np.array([0, 1, 3])], -1)  # nearest in descriptor space: 1
    non_negatives = pad_index_lists([np.array([0, 1, 2, 3])], -1)  # 2 is close but excluded
    cache = torch.full((1, 3), -1)
    pos, negs = mine_tuples(
        q,
        db,
        positives,
        non_negatives,
        cache,
        neg_num=3,
        neg_pool=100,
        generator=torch.Generator().manual_seed(0),
    )
    assert pos.tolist() == [1]
    assert negs.tolist() == [[4, 6, 5]]  # distances 0.04, 0.09, 4.0


def test_previous_negatives_join_the_random_pool() -> None:
    db = _line([float(i) for i in range(1, 51)])  # db i at distance (i+1)^2
    q = _line([0.0])
    positives = pad_index_lists([np.array([49])], -1)
    non_negatives = pad_index_lists([np.array([49])], -1)
    cache = torch.tensor([[0]])  # the hardest negative, used last round
    _, negs = mine_tuples(
        q,
        db,
        positives,
        non_negatives,
        cache,
        neg_num=1,
        neg_pool=1,
        generator=torch.Generator().manual_seed(3),
    )
    assert negs.tolist() == [[0]]


def test_random_pool_is_a_subset_of_the_negatives_and_chunking_does_not_matter() -> None:
    gen = torch.Generator().manual_seed(0)
    db = torch.nn.functional.normalize(torch.randn(300, 8, generator=gen), dim=1)
    q = torch.nn.functional.normalize(torch.randn(20, 8, generator=gen), dim=1)
    positives = pad_index_lists([np.array([i]) for i in range(20)], -1)
    non_negatives = pad_index_lists([np.arange(i, i + 30) for i in range(20)], -1)
    cache = torch.full((20, 5), -1)
    args = (q, db, positives, non_negatives, cache)
    a = mine_tuples(*args, neg_num=5, neg_pool=40, generator=torch.Generator().manual_seed(1))
    b = mine_tuples(
        *args,
        neg_num=5,
        neg_pool=40,
        generator=torch.Generator().manual_seed(1),
        max_elements=300 * 3,
    )
    assert torch.equal(a[0], b[0])
    for row, negs in enumerate(a[1].tolist()):
        assert not set(negs) & set(range(row, row + 30))
        assert len(set(negs)) == 5


def test_too_few_negatives_is_a_clear_error() -> None:
    with pytest.raises(DataError, match="fewer than neg_num=3"):
        mine_tuples(
            _line([0.0]),
            _line([1.0, 2.0, 3.0]),
            pad_index_lists([np.array([0])], -1),
            pad_index_lists([np.array([0, 1])], -1),
            torch.full((1, 3), -1),
            neg_num=3,
            neg_pool=10,
            generator=torch.Generator(),
        )


def test_ground_truth_drops_queries_without_positive_and_miner_updates_cache() -> None:
    db_utm = np.array([[0.0, 0.0], [8.0, 0.0], [20.0, 0.0], [100.0, 0.0], [200.0, 0.0]])
    q_utm = np.array([[1.0, 0.0], [60.0, 0.0]])  # the second has no db image within 10 m
    gt = training_ground_truth(db_utm, q_utm, 10.0, 25.0)
    assert gt.query_ids.tolist() == [0]
    assert gt.positives[0].tolist() == [0, 1] and gt.non_negatives[0].tolist() == [0, 1, 2]
    miner = TupleMiner(gt, neg_num=2, neg_pool=10)
    plan = miner.mine(torch.tensor([0]), _line([0.0]), _line([0.5, 0.1, 0.0, 0.3, 0.2]), seed=0)
    assert plan.tolist() == [[0, 1, 4, 3]]
    assert miner.state_dict()["neg_cache"].tolist() == [[4, 3]]
    with pytest.raises(DataError, match="for another split or neg_num"):
        miner.load_state_dict({"neg_cache": torch.zeros(3, 2, dtype=torch.long)})
