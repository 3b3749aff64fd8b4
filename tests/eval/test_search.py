"""Exact kNN: ties, clamping, chunking within the memory budget, backends, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from vpr_bench.errors import UsageError
from vpr_bench.eval import search
from vpr_bench.eval.search import knn, plan_search


def _unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _reference(q: np.ndarray, db: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """float64 brute force, stable sort (ties to the lower index)."""
    dist = np.sqrt(((q[:, None].astype(np.float64) - db[None]) ** 2).sum(-1))
    order = np.argsort(dist, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(dist, order, axis=1)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    return _unit(rng, 40, 16), _unit(rng, 300, 16)


@pytest.mark.parametrize("backend", ["torch", "faiss"])
def test_matches_brute_force(data: tuple[np.ndarray, np.ndarray], backend: str) -> None:
    q, db = data
    idx, dist = knn(q, db, 7, backend=backend)
    ref_i, ref_d = _reference(q, db, 7)
    assert idx.dtype == np.int64 and dist.dtype == np.float32 and idx.shape == (40, 7)
    np.testing.assert_array_equal(idx, ref_i)
    np.testing.assert_allclose(dist, ref_d, atol=2e-6)


@pytest.mark.parametrize("backend", ["torch", "faiss"])
@pytest.mark.parametrize("chunk_bytes", [4, 64, 1000, 2**30])
def test_ties_go_to_lower_index_even_across_the_kth_place(backend: str, chunk_bytes: int) -> None:
    """Five identical database items tie; only the two lowest indices fit into k=3."""
    rng = np.random.default_rng(3)
    db = _unit(rng, 50, 8)
    for j in (41, 7, 33, 12, 28):
        db[j] = db[20]
    q = db[20:21] + np.float32(1e-3) * _unit(rng, 1, 8)
    q /= np.linalg.norm(q)
    idx, dist = knn(q, db, 3, backend=backend, chunk_bytes=chunk_bytes)
    np.testing.assert_array_equal(idx[0], [7, 12, 20])
    assert dist[0, 0] == dist[0, 1] == dist[0, 2]
    idx6, _ = knn(q, db, 6, backend=backend, chunk_bytes=chunk_bytes)
    np.testing.assert_array_equal(idx6[0], [7, 12, 20, 28, 33, 41])


@pytest.mark.parametrize("backend", ["torch", "faiss"])
def test_k_larger_than_database_is_clamped(backend: str) -> None:
    rng = np.random.default_rng(4)
    q, db = _unit(rng, 3, 4), _unit(rng, 5, 4)
    idx, dist = knn(q, db, 9, backend=backend)
    assert idx.shape == dist.shape == (3, 5)
    for row in idx:
        assert sorted(row.tolist()) == [0, 1, 2, 3, 4]
    assert np.all(np.diff(dist, axis=1) >= 0)


def test_memory_budget_is_respected_and_answer_unchanged(
    data: tuple[np.ndarray, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 40x300 float32 matrix (48 000 bytes) searched with a 4 KiB budget."""
    q, db = data
    full_i, full_d = knn(q, db, 5, chunk_bytes=2**30)
    seen: list[tuple[int, int]] = []
    original = search._block_keys
    buffers: set[int] = set()

    def spy(
        qb: torch.Tensor, dbb: torch.Tensor, sq: torch.Tensor, buf: torch.Tensor
    ) -> torch.Tensor:
        out = original(qb, dbb, sq, buf)
        seen.append(tuple(out.shape))  # type: ignore[arg-type]
        buffers.add(buf.data_ptr())
        assert out.data_ptr() == buf.data_ptr() and buf.numel() * 4 <= budget
        return out

    monkeypatch.setattr(search, "_block_keys", spy)
    budget = 4096
    idx, dist = knn(q, db, 5, chunk_bytes=budget)
    assert len(seen) > 1 and len(buffers) == 1  # one buffer, reused by every block
    assert max(4 * a * b for a, b in seen) <= budget
    assert max(b for _, b in seen) * 16 * 4 <= budget  # database block within budget too
    np.testing.assert_array_equal(idx, full_i)
    np.testing.assert_allclose(dist, full_d, atol=1e-6)


@pytest.mark.parametrize(
    ("shape", "budget"),
    [((6816, 10000, 4096), 256 * 2**20), ((8280, 83952, 4096), 2**20), ((3, 5, 2), 4)],
)
def test_plan_fits_budget(shape: tuple[int, int, int], budget: int) -> None:
    plan = plan_search(*shape, budget)
    assert plan.block_bytes <= budget
    assert 1 <= plan.query_block <= shape[0] and 1 <= plan.db_block <= shape[1]


def test_plan_balances_blocks_at_pitts250k_scale() -> None:
    """256 MiB = 67 108 864 floats: 16 384 rows of 4096-D; 83 952 db rows need 6 blocks of
    13 992; then 67 108 864 // 13 992 = 4 796 queries fit, so 8 280 queries take 2 blocks of
    4 140 (not 4 796 + 3 484)."""
    plan = plan_search(8280, 83952, 4096, 256 * 2**20)
    assert (plan.query_block, plan.db_block) == (4140, 13992)
    # 24 floats: one block of all 4 db rows, then 24 // 4 = 6 queries fit: 9 as 5 + 4, not 6 + 3.
    assert plan_search(9, 4, 2, 4 * 24) == search.SearchPlan(query_block=5, db_block=4)


@pytest.mark.parametrize("chunk_bytes", [8, 24, 2**20])
def test_distinct_keys_rounding_to_one_distance_tie_in_database_order(chunk_bytes: int) -> None:
    """||q||² = 1e6, where float32 steps by 0.0625: the squared distances 1e6 + 1.0201,
    1e6 + 1 and 1e6 + 0.998001 all round to 1000001.0, so the three reported distances are
    equal although their ranking keys ||x||² - 2 q·x (1.0201, 1, 0.998001) differ and put
    item 2 first. Equal reported distances must still go in database order, also across
    the k-th place; item 3 is farther (1e6 + 4)."""
    q = np.array([[1000.0, 0.0]], np.float32)
    db = np.array([[0.0, 1.01], [0.0, 1.0], [0.0, 0.999], [0.0, 2.0]], np.float32)
    idx, dist = knn(q, db, 1, backend="torch", chunk_bytes=chunk_bytes)
    np.testing.assert_array_equal(idx, [[0]])  # the two smallest keys are items 2 and 1
    assert dist[0, 0] == np.sqrt(np.float32(1000001.0))
    idx4, dist4 = knn(q, db, 4, backend="torch", chunk_bytes=chunk_bytes)
    np.testing.assert_array_equal(idx4, [[0, 1, 2, 3]])
    assert dist4[0, 3] == np.sqrt(np.float32(1000004.0))


def test_torch_tensors_and_float16_inputs(data: tuple[np.ndarray, np.ndarray]) -> None:
    q, db = data
    ref_i, _ = knn(q, db, 4)
    idx, _ = knn(torch.from_numpy(q), torch.from_numpy(db), 4, device="cpu")
    np.testing.assert_array_equal(idx, ref_i)
    idx16, dist16 = knn(q.astype(np.float16), db.astype(np.float16), 4)
    assert dist16.dtype == np.float32
    assert (idx16[:, 0] == ref_i[:, 0]).mean() > 0.9


def test_empty_query_set() -> None:
    idx, dist = knn(np.zeros((0, 4), np.float32), np.eye(4, dtype=np.float32), 2)
    assert idx.shape == dist.shape == (0, 2)


def test_oracle_ranking_matches_openibl_distmat(shared_oracles: Path) -> None:
    """Our float32 ranking equals a stable argsort of the float64 oracle distance matrix."""
    with np.load(shared_oracles / "recall_openibl.npz") as z:
        q, db, distmat = z["q_desc"], z["db_desc"], z["distmat"]
    idx, dist = knn(q.astype(np.float32), db.astype(np.float32), db.shape[0])
    np.testing.assert_array_equal(idx, np.argsort(distmat, axis=1, kind="stable"))
    np.testing.assert_allclose(dist**2, np.sort(distmat, axis=1), atol=2e-6)


def test_approximate_index_factory_is_a_separate_path(data: tuple[np.ndarray, np.ndarray]) -> None:
    q, db = data
    exact_i, _ = knn(q, db, 5)
    idx, dist = knn(q, db, 5, index_factory="HNSW32")
    assert idx.shape == (40, 5) and np.all(np.diff(dist, axis=1) >= 0)
    assert (idx[:, 0] == exact_i[:, 0]).mean() >= 0.8
    idx_ivf, _ = knn(q, db, 5, index_factory="IVF4,Flat")
    assert idx_ivf.shape == (40, 5)
    assert np.all((idx_ivf >= -1) & (idx_ivf < 300))


def test_bad_input_errors(data: tuple[np.ndarray, np.ndarray]) -> None:
    q, db = data
    with pytest.raises(UsageError, match="dimension 16 but the database has 8"):
        knn(q, db[:, :8], 3)
    with pytest.raises(UsageError, match="k must be a positive integer"):
        knn(q, db, 0)
    with pytest.raises(UsageError, match="2-D"):
        knn(q[0], db, 3)
    with pytest.raises(UsageError, match="empty"):
        knn(q, db[:0], 3)
    bad = db.copy()
    bad[5, 2] = np.nan
    with pytest.raises(UsageError, match="NaN or inf"):
        knn(q, bad, 3)
    with pytest.raises(UsageError, match=r"rows 0\.\.39 contain NaN or inf"):
        knn(np.where(q > 0.5, np.float32(np.inf), q), db, 3)
    huge = np.full((3, 16), 3e38, np.float32)  # finite, though their sum overflows: accepted
    assert knn(huge, huge, 2)[0].shape == (3, 2)
    with pytest.raises(UsageError, match="backend must be"):
        knn(q, db, 3, backend="annoy")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="needs the faiss backend"):
        knn(q, db, 3, backend="torch", index_factory="HNSW32")
    with pytest.raises(UsageError, match="cannot build index"):
        knn(q, db, 3, index_factory="NotAnIndex99")
    with pytest.raises(UsageError, match="chunk_bytes"):
        knn(q, db, 3, chunk_bytes=2)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(data: tuple[np.ndarray, np.ndarray]) -> None:
    q, db = data
    cpu_i, cpu_d = knn(q, db, 6, device="cpu")
    gpu_i, gpu_d = knn(q, db, 6, device="cuda", chunk_bytes=4096)
    np.testing.assert_array_equal(gpu_i, cpu_i)
    np.testing.assert_allclose(gpu_d, cpu_d, atol=1e-5)
