"""k-reciprocal re-ranking and difficult positives against a plain per-image loop version.

``_loop_reference`` is methods.md Part A 4.3 written as directly as possible (dense float64
matrices, one Python loop per image), independent of the vectorised code under test.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vpr_bench.errors import UsageError, VprBenchError
from vpr_bench.train.rerank import jaccard_distances, select_difficult_positives

N_CLUSTERS, N_Q, N_DB, DIM = 8, 60, 80, 16


def _clustered(seed: int, n_q: int = N_Q, n_db: int = N_DB) -> tuple[np.ndarray, ...]:
    """Unit descriptors around 8 random centres; returns queries, database and their labels."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((N_CLUSTERS, DIM))
    labels = rng.integers(0, N_CLUSTERS, size=n_q + n_db)
    x = centres[labels] + 0.35 * rng.standard_normal((n_q + n_db, DIM))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    x = x.astype(np.float32)
    return x[:n_q], x[n_q:], labels[:n_q], labels[n_q:]


def _loop_reference(
    q: np.ndarray, db: np.ndarray, k1: int, k2: int, lambda_value: float
) -> np.ndarray:
    """The re-ranked query x database distance, one image at a time, dense, in float64."""
    x = np.concatenate([q, db]).astype(np.float64)
    n, n_q = len(x), len(q)
    sq = (x**2).sum(1)
    squared_l2 = sq[:, None] + sq[None, :] - 2.0 * x @ x.T
    fourth = squared_l2**2
    dist = (fourth / fourth.max(axis=0)).T  # every column over its maximum, transposed
    ranking = np.argsort(dist, axis=1, kind="stable")

    def reciprocal(i: int, size: int) -> list[int]:
        return [int(c) for c in ranking[i, :size] if i in ranking[c, :size]]

    half = int(np.around(k1 / 2)) + 1
    v = np.zeros((n, n))
    for i in range(n):
        core = reciprocal(i, k1 + 1)
        members = set(core)
        for c in core:
            around_c = reciprocal(c, half)
            if len(set(around_c) & set(core)) > 2 / 3 * len(around_c):
                members |= set(around_c)
        cols = sorted(members)
        weight = np.exp(-dist[i, cols])
        v[i, cols] = weight / weight.sum()
    if k2 > 1:
        v = np.stack([v[ranking[i, :k2]].mean(axis=0) for i in range(n)])
    jaccard = np.ones((n_q, n - n_q))
    for i in range(n_q):
        for j in range(n - n_q):
            shared = np.minimum(v[i], v[n_q + j]).sum()
            jaccard[i, j] = 1.0 - shared / (2.0 - shared)
    return (1.0 - lambda_value) * jaccard + lambda_value * dist[:n_q, n_q:]


def _positive_lists(
    q: np.ndarray, db: np.ndarray, q_lab: np.ndarray, db_lab: np.ndarray, pool: int
) -> torch.Tensor:
    """Same-cluster database ids by plain distance, first ``pool``, -1-padded."""
    dist = ((q[:, None, :] - db[None, :, :]) ** 2).sum(2)
    out = np.full((len(q), pool), -1, dtype=np.int64)
    for i in range(len(q)):
        same = np.flatnonzero(db_lab == q_lab[i])
        same = same[np.argsort(dist[i, same], kind="stable")][:pool]
        out[i, : len(same)] = same
    return torch.from_numpy(out)


def _gather(distances: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
    return distances.gather(1, positives.clamp(min=0)).masked_fill(positives < 0, 0.0)


def test_worked_example_of_the_spec() -> None:
    positives = torch.tensor([[100, 101, 102, 103, 104, 105]])
    jaccard = torch.tensor([[0.5, 0.2, 0.6, 0.1, 0.7, 0.65]])
    picks = select_difficult_positives(positives, jaccard, pos_num=10)
    assert picks.tolist() == [[103, 105, 101, *[-1] * 7]]
    assert select_difficult_positives(positives, jaccard, pos_num=2).tolist() == [[103, 105]]


def test_difficult_positives_padding_ties_and_unchanged_order() -> None:
    positives = torch.tensor([[7, 8, 9, -1, -1], [4, 5, -1, -1, -1], [1, 2, 3, 6, 0]])
    jaccard = torch.tensor(
        [
            [0.3, 0.2, 0.1, 9.0, -9.0],  # padding values are ignored
            [0.4, 0.4, 0.0, 0.0, 0.0],  # a tie keeps the original order: all gaps 0
            [0.1, 0.2, 0.3, 0.4, 0.5],  # nothing moved: the nearest pos_num, in order
        ]
    )
    picks = select_difficult_positives(positives, jaccard, pos_num=3)
    # Row 0: Jaccard order (9, 8, 7), gaps (-2, 0, 2): 9 promoted, 8 unmoved, 7 dropped.
    assert picks.tolist() == [[9, 8, -1], [4, 5, -1], [1, 2, 3]]
    empty = select_difficult_positives(torch.full((2, 3), -1), torch.zeros(2, 3), pos_num=2)
    assert empty.tolist() == [[-1, -1], [-1, -1]]


@pytest.mark.parametrize(
    ("k1", "k2", "lambda_value"),
    [(20, 1, 0.1), (5, 3, 0.3), (7, 1, 0.0), (4, 25, 1.0)],
)
def test_matches_the_loop_reference(k1: int, k2: int, lambda_value: float) -> None:
    q, db, q_lab, db_lab = _clustered(seed=k1)
    expected = _loop_reference(q, db, k1, k2, lambda_value)
    got = jaccard_distances(
        torch.from_numpy(q), torch.from_numpy(db), k1=k1, k2=k2, lambda_value=lambda_value
    )
    assert got.dtype == torch.float32 and got.shape == (N_Q, N_DB)
    assert np.abs(got.numpy() - expected).max() <= 1e-5
    positives = _positive_lists(q, db, q_lab, db_lab, pool=20)
    ref_picks = select_difficult_positives(
        positives, _gather(torch.from_numpy(expected), positives), 10
    )
    our_picks = select_difficult_positives(positives, _gather(got, positives), 10)
    assert torch.equal(ref_picks, our_picks)
    if lambda_value < 1.0:
        plain_order = (positives >= 0).sum(1).clamp(max=10)
        moved = [
            ref_picks[i, : plain_order[i]].tolist() != positives[i, : plain_order[i]].tolist()
            for i in range(N_Q)
        ]
        assert any(moved)


def test_rows_subset_and_float64_input() -> None:
    q, db, _, _ = _clustered(seed=3)
    full = jaccard_distances(torch.from_numpy(q), torch.from_numpy(db))
    rows = torch.tensor([5, 0, 5, 59], dtype=torch.int32)
    part = jaccard_distances(torch.from_numpy(q), torch.from_numpy(db), rows)
    assert torch.allclose(part, full[rows.long()], atol=1e-6, rtol=0)
    none = jaccard_distances(
        torch.from_numpy(q), torch.from_numpy(db), torch.tensor([], dtype=torch.long)
    )
    assert none.shape == (0, N_DB)
    wide = jaccard_distances(torch.from_numpy(q).double(), torch.from_numpy(db).double())
    assert wide.dtype == torch.float32
    expected = _loop_reference(q, db, 20, 1, 0.1)
    assert np.abs(wide.numpy() - expected).max() <= 1e-6


@pytest.mark.parametrize("k2", [1, 4])
def test_chunk_size_does_not_matter(k2: int) -> None:
    q, db, _, _ = _clustered(seed=11)
    qt, dbt = torch.from_numpy(q), torch.from_numpy(db)
    big = jaccard_distances(qt, dbt, k2=k2)
    for tiny in (50, 977):  # 50: one row at a time in every stage
        small = jaccard_distances(qt, dbt, k2=k2, max_elements=tiny)
        assert torch.allclose(small, big, atol=1e-6, rtol=0), tiny


def test_duplicates_and_identical_images_stay_finite() -> None:
    q, db, _, _ = _clustered(seed=7)
    db[:10] = q[:10]  # exact duplicates tie with the image itself
    got = jaccard_distances(torch.from_numpy(q), torch.from_numpy(db), k1=6)
    assert torch.isfinite(got).all() and got.min() >= 0.0 and got.max() <= 1.0
    # All images identical: every distance is 0 (OpenIBL would divide 0 by 0 here).
    same = torch.ones(4, 3)
    flat = jaccard_distances(same[:2], same[2:], k1=2)
    assert torch.isfinite(flat).all() and flat.shape == (2, 2)


def test_bad_inputs_are_clear_errors() -> None:
    q, db = torch.randn(3, 4), torch.randn(5, 4)
    with pytest.raises(UsageError, match=r"k1=8 needs at least k1 \+ 1 = 9 images.*hold 8"):
        jaccard_distances(q, db, k1=8)
    jaccard_distances(q, db, k1=7)  # k1 + 1 == number of images is fine
    with pytest.raises(ValueError, match="dimensions differ: queries 4, database 3"):
        jaccard_distances(q, torch.randn(5, 3), k1=2)
    with pytest.raises(UsageError, match="k2 must be an integer in"):
        jaccard_distances(q, db, k1=2, k2=0)
    with pytest.raises(UsageError, match="lambda_value must be in"):
        jaccard_distances(q, db, k1=2, lambda_value=1.5)
    with pytest.raises(UsageError, match="max_elements"):
        jaccard_distances(q, db, k1=2, max_elements=0)
    with pytest.raises(ValueError, match=r"query indices in \[0, 3\)"):
        jaccard_distances(q, db, torch.tensor([3]), k1=2)
    with pytest.raises(ValueError, match="floating point"):
        jaccard_distances(q.long(), db, k1=2)
    with pytest.raises(ValueError, match="NaN"):
        jaccard_distances(q, db.clone().fill_(float("nan")), k1=2)

    pos, jac = torch.tensor([[0, 1, -1]]), torch.zeros(1, 3)
    with pytest.raises(UsageError, match="pos_num must be an integer >= 1"):
        select_difficult_positives(pos, jac, pos_num=0)
    with pytest.raises(ValueError, match=r"shape of positives \(1, 3\), got \(1, 2\)"):
        select_difficult_positives(pos, torch.zeros(1, 2), pos_num=1)
    with pytest.raises(ValueError, match="int64"):
        select_difficult_positives(pos.int(), jac, pos_num=1)
    with pytest.raises(ValueError, match="end of each row"):
        select_difficult_positives(torch.tensor([[0, -1, 2]]), jac, pos_num=1)
    with pytest.raises(ValueError, match="finite"):
        select_difficult_positives(pos, torch.tensor([[0.0, float("nan"), 0.0]]), pos_num=1)
    # Parameter errors reach users as VprBenchErrors; contract violations are ValueErrors.
    assert issubclass(UsageError, VprBenchError)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.usefixtures("cuda_true_fp32")
@pytest.mark.parametrize("k2", [1, 3])
def test_cuda_matches_cpu(k2: int) -> None:
    q, db, q_lab, db_lab = _clustered(seed=5, n_q=300, n_db=500)
    qt, dbt = torch.from_numpy(q), torch.from_numpy(db)
    cpu = jaccard_distances(qt, dbt, k2=k2)
    cuda = jaccard_distances(qt.cuda(), dbt.cuda(), k2=k2, max_elements=1 << 12)
    assert cuda.device.type == "cuda"
    assert torch.allclose(cuda.cpu(), cpu, atol=1e-5, rtol=0)
    positives = _positive_lists(q, db, q_lab, db_lab, pool=20)
    cpu_picks = select_difficult_positives(positives, _gather(cpu, positives), 10)
    cuda_picks = select_difficult_positives(positives.cuda(), _gather(cuda, positives.cuda()), 10)
    assert torch.equal(cuda_picks.cpu(), cpu_picks)
