"""Exact (and explicitly approximate) k-nearest-neighbour search by L2 distance.

The exact search is the protocol's reference ranking (protocols.md "Ranking"): float32
descriptors, L2 distance, ties in database order. Its definition, shared by both backends:

* The order is by the reported distance ``sqrt(max(0, ||q||² + ||x||² - 2 q·x))`` in float32,
  then by database index. The torch backend computes ``key = ||x||² - 2 q·x`` for the whole
  block in one fused product, takes the ``k + 1`` smallest keys of each row and turns only
  those into distances (``||q||²`` is constant per row and the distance is monotone in the
  key); faiss computes the squared distance its own way and we take the square root.
* Each query's neighbours are the ``k`` smallest distances; equal distances go to the lower
  database index first, also at the k-th place (a tie there, including distinct keys that
  round to one distance, is resolved on the full row, never left to ``topk``/faiss, which do
  not define it).
* Identical database vectors get bitwise-equal distances, so duplicates tie and keep database
  order (the GEMM kernel treats every column alike; a one-query block is padded to two rows
  to keep it off the matrix-vector kernel, which rounds tail columns differently).
* ``k`` larger than the database is **clamped**: the result has ``min(k, N)`` columns (no
  padding), so every returned index is a real database item.

The torch backend never holds a query-by-database block larger than ``chunk_bytes``
(4 bytes per float32 key; one buffer reused for every block, two rows when a block has one
query); query and database blocks are bounded by the same budget and balanced (as few
blocks as the budget allows, each no larger than that count needs). The result arrays
``[Q, k]`` come on top. An approximate faiss index (``index_factory``, e.g.
``"HNSW32"`` or ``"IVF64,Flat"``) is a different protocol: it may miss neighbours, and rows
it cannot fill are padded with index -1 and distance +inf.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from vpr_bench.device import resolve_device
from vpr_bench.errors import UsageError

if TYPE_CHECKING:
    import numpy as np
    import torch

__all__ = ["DEFAULT_CHUNK_BYTES", "SearchPlan", "knn", "plan_search"]

log = logging.getLogger(__name__)

DEFAULT_CHUNK_BYTES = 256 * 2**20
"""Default memory budget of one distance block: 256 MiB."""

Backend = Literal["auto", "torch", "faiss"]


@dataclass(frozen=True)
class SearchPlan:
    """Block sizes of a chunked search.

    Attributes:
        query_block: Queries per block.
        db_block: Database items per block.
    """

    query_block: int
    db_block: int

    @property
    def block_bytes(self) -> int:
        """Bytes of one float32 ``query_block x db_block`` distance block."""
        return 4 * self.query_block * self.db_block


def plan_search(n_queries: int, n_database: int, dim: int, chunk_bytes: int) -> SearchPlan:
    """Choose block sizes so that no block (distances, queries, database) exceeds the budget.

    Args:
        n_queries: ``Q``.
        n_database: ``N``.
        dim: Descriptor dimension ``D``.
        chunk_bytes: The budget in bytes (at least 4: one float32).

    Returns:
        The plan; ``4 * query_block * db_block <= chunk_bytes`` whenever the budget allows one
        float32, and ``block * dim`` floats of queries or database fit the budget as well.
    """
    elems = max(1, chunk_bytes // 4)
    rows = max(1, elems // max(1, dim))
    db_block = _balanced(max(1, n_database), rows)
    query_block = _balanced(max(1, n_queries), min(rows, max(1, elems // db_block)))
    return SearchPlan(query_block=query_block, db_block=db_block)


def _balanced(n: int, cap: int) -> int:
    """Rows per block for ``n`` rows in the fewest blocks of at most ``cap``, none thin."""
    n_blocks = -(-n // max(1, cap))
    return -(-n // n_blocks)


def _check_inputs(queries: object, database: object, k: int) -> tuple[int, int, int]:
    for what, x in (("queries", queries), ("database", database)):
        shape = getattr(x, "shape", None)
        if shape is None or len(shape) != 2:
            raise UsageError(
                f"knn: {what} must be a 2-D [rows, dim] array or tensor, got "
                f"{type(x).__name__} with shape {shape}."
            )
    q_shape, db_shape = queries.shape, database.shape  # type: ignore[attr-defined]
    if q_shape[1] != db_shape[1]:
        raise UsageError(
            f"knn: queries have dimension {q_shape[1]} but the database has {db_shape[1]}; "
            "both must come from the same model (and the same PCA)."
        )
    if db_shape[0] == 0:
        raise UsageError("knn: the database is empty; nothing to search.")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise UsageError(f"knn: k must be a positive integer, got {k!r}.")
    return int(q_shape[0]), int(db_shape[0]), int(q_shape[1])


def _block(
    x: np.ndarray | torch.Tensor,
    start: int,
    stop: int,
    device: torch.device,
    *,
    check: bool = True,
) -> torch.Tensor:
    """Rows ``start:stop`` as float32 on ``device`` (a view when already there).

    ``check`` rejects non-finite values; off for rows already checked on an earlier pass.
    """
    import numpy as np
    import torch

    part = x[start:stop]
    # A copy only when needed: torch warns on read-only arrays (e.g. memmaps opened with "r").
    t = (
        torch.from_numpy(np.array(part, order="C", copy=None if part.flags.writeable else True))
        if isinstance(part, np.ndarray)
        else part
    )
    t = t.to(device=device, dtype=torch.float32)
    # Any NaN/inf makes the sum non-finite (10x cheaper); isfinite only rules out overflow.
    if check and not bool(torch.isfinite(t.sum())) and not bool(torch.isfinite(t).all()):
        raise UsageError(
            f"knn: rows {start}..{stop - 1} contain NaN or inf; descriptors must be finite "
            "(check the model output and the descriptor cache)."
        )
    return t


def knn(
    queries: np.ndarray | torch.Tensor,
    database: np.ndarray | torch.Tensor,
    k: int,
    *,
    backend: Backend = "auto",
    device: str | torch.device | None = None,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    index_factory: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest database items of every query by L2 distance.

    Args:
        queries: ``[Q, D]`` descriptors (numpy, including float16 memmaps, or torch).
        database: ``[N, D]`` descriptors.
        k: Neighbours per query; clamped to ``N`` (see the module docstring).
        backend: ``"torch"`` (the reference exact path, CPU or CUDA), ``"faiss"`` (flat index,
            GPU when faiss has GPUs and ``device`` is CUDA) or ``"auto"`` (torch for exact
            search, faiss for an ``index_factory``).
        device: Torch device (default: CUDA when available, else CPU).
        chunk_bytes: Memory budget of one distance block (torch) or query block (faiss).
        index_factory: A faiss index-factory string for approximate search (a different
            protocol); None for exact search.

    Returns:
        ``(idx, dist)``: ``[Q, min(k, N)]`` int64 indices (nearest first, ties in database
        order) and their float32 L2 distances (not squared), as numpy arrays.

    Raises:
        UsageError: For bad shapes, non-finite values, a bad ``k`` or an unknown backend.
    """
    n_q, n_db, dim = _check_inputs(queries, database, k)
    if chunk_bytes < 4:
        raise UsageError(f"knn: chunk_bytes must be at least 4 (one float32), got {chunk_bytes}.")
    if backend not in ("auto", "torch", "faiss"):
        raise UsageError(f"knn: backend must be 'auto', 'torch' or 'faiss', not {backend!r}.")
    if index_factory is not None and backend == "torch":
        raise UsageError(
            f"knn: index_factory={index_factory!r} needs the faiss backend; use backend='faiss' "
            "or 'auto'."
        )
    k_eff = min(k, n_db)
    if k_eff < k:
        log.info("knn: k=%d is larger than the database (%d items); clamped to %d", k, n_db, n_db)
    if backend == "faiss" or index_factory is not None:
        return _faiss_knn(queries, database, k_eff, device, chunk_bytes, index_factory)
    plan = plan_search(n_q, n_db, dim, chunk_bytes)
    return _torch_knn(queries, database, k_eff, resolve_device(device), plan)


def _distances(keys: torch.Tensor, q_sq: torch.Tensor) -> torch.Tensor:
    """Reported float32 distances ``sqrt(max(0, ||q||² + key))`` of selected ranking keys."""
    return (keys + q_sq).clamp_(min=0.0).sqrt_()


def _select_block(
    keys: torch.Tensor, q_sq: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` (+1 when possible) nearest of each row as ``(distance, index)`` candidates.

    ``keys`` holds ``||x||² - 2 q·x`` (the squared distance less the row's constant
    ``||q||²``); only the selected entries are turned into distances. The distance is a
    monotone (non-decreasing) function of the key within a row, so everything outside the
    ``k + 1`` smallest keys is at least as far as the ``(k + 1)``-th candidate. When that
    candidate's *distance* equals the ``k``-th one (an exact key tie, or distinct keys that
    round to one float32 distance), items beyond the candidates may tie as well: such a row is
    resolved on its full distance row, ties to the lower index. Otherwise the first ``k``
    candidates are exactly the ``k`` nearest; their order is settled by :func:`_merge`.
    """
    import torch

    kk = min(k + 1, keys.shape[1])
    top, idx = torch.topk(keys, kk, dim=1, largest=False, sorted=True)
    vals = _distances(top, q_sq[:, None])
    if kk > k:
        tied = torch.nonzero(vals[:, k - 1] == vals[:, k]).flatten().tolist()
        for r in tied:  # rare: a distance tie straddles the k-th place
            row = _distances(keys[r], q_sq[r])
            cand = torch.nonzero(row <= vals[r, k - 1]).flatten()
            order = torch.sort(row[cand], stable=True).indices[:kk]
            vals[r], idx[r] = row[cand[order]], cand[order]
    return vals, idx


def _merge(
    best: tuple[torch.Tensor, torch.Tensor] | None,
    vals: torch.Tensor,
    idx: torch.Tensor,
    k: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep the ``k`` smallest ``(value, index)`` pairs, lexicographically."""
    import torch

    if best is not None:
        vals, idx = torch.cat([best[0], vals], dim=1), torch.cat([best[1], idx], dim=1)
    by_index = torch.argsort(idx, dim=1)
    vals, idx = vals.gather(1, by_index), idx.gather(1, by_index)
    by_value = torch.sort(vals, dim=1, stable=True).indices[:, :k]
    return vals.gather(1, by_value), idx.gather(1, by_value)


def _torch_knn(
    queries: np.ndarray | torch.Tensor,
    database: np.ndarray | torch.Tensor,
    k: int,
    device: torch.device,
    plan: SearchPlan,
) -> tuple[np.ndarray, np.ndarray]:
    import numpy as np
    import torch

    from vpr_bench.progress import progress

    n_q, n_db = int(queries.shape[0]), int(database.shape[0])
    if n_q == 0:
        return np.zeros((0, k), dtype=np.int64), np.zeros((0, k), dtype=np.float32)
    q_starts = range(0, n_q, plan.query_block)
    best: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * len(q_starts)
    q_sq: list[torch.Tensor] = []  # ||q||² per query block, computed on the first pass
    # One key buffer for every block (a one-query block is computed on two rows, see
    # _block_keys); blocks use its leading elements as a contiguous [rows, cols] view.
    buf = torch.empty(max(2, plan.query_block) * plan.db_block, device=device)
    n_blocks = len(q_starts) * -(-n_db // plan.db_block)
    log.debug("knn torch: Q=%d N=%d k=%d plan=%s device=%s", n_q, n_db, k, plan, device)
    with torch.no_grad(), progress(n_blocks, "knn", "block") as bar:
        for d0 in range(0, n_db, plan.db_block):
            db = _block(database, d0, d0 + plan.db_block, device)
            db_sq = (db * db).sum(dim=1)
            for qi, q0 in enumerate(q_starts):
                q = _block(queries, q0, q0 + plan.query_block, device, check=d0 == 0)
                if d0 == 0:
                    q_sq.append((q * q).sum(dim=1))
                keys = _block_keys(q, db, db_sq, buf)
                vals, idx = _select_block(keys, q_sq[qi], k)
                best[qi] = _merge(best[qi], vals, idx + d0, k)
                bar.update(1)
    out_v = torch.cat([b[0] for b in best if b is not None]).cpu().numpy()
    out_i = torch.cat([b[1] for b in best if b is not None]).cpu().numpy()
    return out_i.astype(np.int64, copy=False), out_v.astype(np.float32, copy=False)


def _block_keys(
    q: torch.Tensor, db: torch.Tensor, db_sq: torch.Tensor, buf: torch.Tensor
) -> torch.Tensor:
    """``[q, n]`` ranking keys ``||x||² - 2 q·x`` in one fused product, written into ``buf``.

    ``||q||² + key`` (float32) is exactly the squared distance the reported distance is the
    square root of (clamped at 0), so ranking by key and reporting from it agree.
    """
    import torch

    # A one-row product goes to a matrix-vector kernel that may round its tail columns
    # differently, so identical database vectors would not tie; two rows keep it a GEMM,
    # whose packed kernel treats every column alike.
    rows = q if q.shape[0] > 1 else q.expand(2, -1)
    out = buf[: rows.shape[0] * db.shape[0]].view(rows.shape[0], db.shape[0])
    torch.addmm(db_sq[None, :], rows, db.T, beta=1.0, alpha=-2.0, out=out)
    return out[: q.shape[0]]


def _import_faiss() -> object:
    try:
        import faiss
    except ImportError as exc:
        raise UsageError(
            "knn: the faiss backend needs faiss; install it with `pip install faiss-cpu` "
            "(or faiss-gpu), or use backend='torch' for exact search."
        ) from exc
    return faiss


def _faiss_knn(
    queries: np.ndarray | torch.Tensor,
    database: np.ndarray | torch.Tensor,
    k: int,
    device: str | torch.device | None,
    chunk_bytes: int,
    index_factory: str | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Faiss search; exact (flat) searches resolve ties at the k-th place like the torch path."""
    import numpy as np
    import torch

    faiss: Any = _import_faiss()
    n_q, n_db, dim = int(queries.shape[0]), int(database.shape[0]), int(queries.shape[1])
    plan = plan_search(n_q, n_db, dim, chunk_bytes)
    cpu = torch.device("cpu")
    if index_factory is None:
        index = faiss.IndexFlatL2(dim)
    else:
        try:
            index = faiss.index_factory(dim, index_factory, faiss.METRIC_L2)
        except RuntimeError as exc:
            raise UsageError(
                f"knn: faiss cannot build index {index_factory!r} ({exc}); use a faiss "
                "index-factory string such as 'HNSW32' or 'IVF64,Flat'."
            ) from exc
    gpu_res_cls = getattr(faiss, "StandardGpuResources", None)
    target = torch.device(device) if device is not None else None
    if target is not None and target.type == "cuda":
        if gpu_res_cls is not None and faiss.get_num_gpus() > 0:
            index = faiss.index_cpu_to_gpu(gpu_res_cls(), target.index or 0, index)
        else:
            log.warning("knn: this faiss build has no GPU support; searching on the CPU")
    if index_factory is not None and not index.is_trained:
        index.train(
            np.concatenate(
                [
                    _block(database, s, s + plan.db_block, cpu).numpy()
                    for s in range(0, n_db, plan.db_block)
                ]
            )
        )
    for start in range(0, n_db, plan.db_block):
        index.add(_block(database, start, start + plan.db_block, cpu).numpy())
    out_i = np.empty((n_q, k), dtype=np.int64)
    out_d = np.empty((n_q, k), dtype=np.float32)
    for q0 in range(0, n_q, plan.query_block):
        q = _block(queries, q0, q0 + plan.query_block, cpu).numpy()
        idx, dist = _faiss_rows(index, q, k, n_db, exact=index_factory is None)
        out_i[q0 : q0 + len(q)], out_d[q0 : q0 + len(q)] = idx, dist
    return out_i, out_d


def _faiss_rows(
    index: Any, q: np.ndarray, k: int, n_db: int, *, exact: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Search one query block; widen the search where an exact tie straddles the k-th place."""
    import numpy as np

    kk = min(k + 1, n_db) if exact else k
    sq, idx = index.search(q, kk)
    dist = np.sqrt(np.maximum(sq, 0.0)).astype(np.float32)
    dist[idx < 0] = np.inf
    rows_i, rows_d = np.empty((len(q), k), np.int64), np.empty((len(q), k), np.float32)
    for r in range(len(q)):
        ri, rd = idx[r], dist[r]
        width = kk
        while exact and width < n_db and rd[k - 1] == rd[width - 1]:
            width = min(2 * width, n_db)  # every item tied with the k-th must be seen
            wsq, wi = index.search(q[r : r + 1], width)
            ri, rd = wi[0], np.sqrt(np.maximum(wsq[0], 0.0)).astype(np.float32)
        order = np.lexsort((np.where(ri < 0, np.iinfo(np.int64).max, ri), rd))[:k]
        rows_i[r], rows_d[r] = ri[order], rd[order]
    return rows_i, rows_d
