"""k-reciprocal (Jaccard) re-ranking and SFRS's difficult positives (methods.md Part A, 4.2-4.3).

SFRS (generations >= 1) re-ranks the training database with the k-reciprocal encoding of Zhong
et al. (CVPR 2017) and picks as "difficult positives" the positives that the re-ranking
promoted. OpenIBL computes it with dense ``(Q + N) x (Q + N)`` NumPy matrices, a full argsort of
every row and per-image Python loops (OpenIBL ``ibl/utils/rerank.py``, called from
``examples/netvlad_img_sfrs.py:80-85``; the picking is ``ibl/utils/data/sampler.py:159-177``).
This module computes the same numbers from the descriptors, vectorised on their device:

* :func:`jaccard_distances`: the ``queries x database`` block of the re-ranked distance, for the
  requested query rows only. Neighbour lists come from blocks of the (symmetric) product matrix,
  each computed once, and ``torch.topk``; the k-reciprocal encodings ``V`` are kept sparse
  (``[n, width]`` indices and values, ``width`` = the largest expanded neighbourhood, about 40
  for k1 = 20); the Jaccard sums walk an inverted index of the database rows of ``V``. No
  ``n x n`` matrix is ever held: besides the ``[rows, N]`` result and ``O(n (k1 + width))``
  lists, every temporary has at most ``max_elements`` elements (a chunk holds at least one
  row, so a single row whose own need is larger is processed alone).
* :func:`select_difficult_positives`: OpenIBL's gap rule on a batch of positive lists.

Line references ``rerank.py:N`` are to OpenIBL ``ibl/utils/rerank.py`` at commit ``f3ef4fb``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator

import torch
from torch import Tensor

from vpr_bench.errors import UsageError

__all__ = ["DEFAULT_MAX_ELEMENTS", "jaccard_distances", "select_difficult_positives"]

log = logging.getLogger(__name__)

DEFAULT_MAX_ELEMENTS = 1 << 24
"""Upper bound on the elements of one temporary tensor (64 MiB of float32)."""


def jaccard_distances(
    query_desc: Tensor,
    db_desc: Tensor,
    rows: Tensor | None = None,
    *,
    k1: int = 20,
    k2: int = 1,
    lambda_value: float = 0.1,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
) -> Tensor:
    """The re-ranked (Jaccard + original) distance of query rows to every database image.

    The graph holds all ``n = Q + N`` images, queries first. With ``d`` the plain squared-L2
    distance (OpenIBL ``ibl/evaluators.py:127-129``; clamped at 0 here, which only changes
    rounding noise of self-distances):

    1. ``P = d ** 2`` (OpenIBL squares the already squared distances, ``rerank.py:42``) and
       ``D[i, j] = P[i, j] / max_k P[i, k]``. OpenIBL divides each *column* by its maximum and
       transposes (``rerank.py:43``); for the symmetric ``P`` that is row ``i`` divided by its
       own maximum, which is what is computed. A row whose maximum is 0 (all images identical)
       is left at 0 (OpenIBL would produce NaN).
    2. ``F(i)``: the ``k1 + 1`` smallest ``D[i, :]``, the image itself included
       (``rerank.py:45, 53``). ``R(i)`` = the members ``c`` of ``F(i)`` with ``i`` in ``F(c)``
       (k-reciprocal neighbours, ``rerank.py:54-56``). ``H(c)``: the same with
       ``round(k1 / 2) + 1`` nearest, rounded half to even like NumPy (``rerank.py:60-63``).
    3. ``E(i)`` = ``R(i)`` united with every ``H(c)``, ``c`` in ``R(i)``, that shares strictly
       more than ``2/3 * |H(c)|`` members with ``R(i)`` (``rerank.py:58-67``; the threshold is
       evaluated in float64 exactly as written there).
    4. ``V[i, k] = exp(-D[i, k]) / sum_{k' in E(i)} exp(-D[i, k'])`` for ``k`` in ``E(i)``,
       else 0 (``rerank.py:68-69``), for every image.
    5. ``k2 > 1``: ``V[i]`` is replaced by the mean of ``V`` over the ``k2`` nearest images of
       ``i`` (query expansion, ``rerank.py:71-75``); ``k2 = 1`` (SFRS) leaves ``V`` as is.
    6. ``J[i, j] = 1 - s / (2 - s)`` with ``s = sum_k min(V[i, k], V[j, k])`` over all ``n``
       images (``rerank.py:78-92``).
    7. Result ``(1 - lambda_value) * J[i, Q + j] + lambda_value * D[i, Q + j]``: the
       *normalised fourth-power* distance of step 1 is mixed in, not the plain one
       (``rerank.py:70, 94, 98``).

    Ties: the neighbour lists are ``torch.topk`` on ``|c|^2 / 2 - r.c`` (which orders each row
    exactly like ``D`` in exact arithmetic, and is merged over blocks of columns). Among images
    at equal distance at the ``k1 + 1`` (or ``round(k1 / 2) + 1``) boundary, which one is kept
    is implementation-defined, as with OpenIBL's unstable ``np.argsort`` (methods.md O-7);
    distances that differ only by rounding may also be ordered differently from OpenIBL's
    float32 ``D``. The image itself is not forced into its own list (OpenIBL does not either);
    exact duplicates can therefore push it out. Everything after the neighbour lists is
    tie-free (set operations and sums).

    Args:
        query_desc: ``[Q, D]`` query descriptors (floating point; computed in float64 when
            either input is float64, else float32).
        db_desc: ``[N, D]`` database descriptors, on the same device.
        rows: ``[R]`` integer indices into the queries whose rows are wanted (default: all, in
            order). Duplicates are allowed.
        k1: Neighbourhood size (SFRS: 20). ``k1 + 1`` must not exceed ``Q + N``.
        k2: Query-expansion size (SFRS: 1, none); ``1 <= k2 <= Q + N``.
        lambda_value: Weight of the original distance (SFRS: 0.1), in ``[0, 1]``.
        max_elements: Bound on the elements of one temporary tensor.

    Returns:
        ``[R, N]`` float32 distances on the descriptors' device (``R = Q`` without ``rows``).

    Raises:
        ValueError: The descriptors or ``rows`` are not tensors of the expected shape, dtype,
            device or range, or hold non-finite values.
        UsageError: ``k1``, ``k2``, ``lambda_value`` or ``max_elements`` is out of range (e.g.
            ``k1`` at least the number of images).
    """
    _check_descriptors(query_desc, db_desc)
    n_q, n_db = query_desc.shape[0], db_desc.shape[0]
    n = n_q + n_db
    device = query_desc.device
    rows = _check_rows(rows, n_q, device)
    _check_parameters(n, k1=k1, k2=k2, lambda_value=lambda_value, max_elements=max_elements)

    dtype = torch.float64 if torch.float64 in (query_desc.dtype, db_desc.dtype) else torch.float32
    x = torch.cat([query_desc.to(dtype), db_desc.to(dtype)])
    half_sq = (x * x).sum(1) / 2
    # Filled on the way by the neighbour search: |c|^2 / 2 - r.c of requested rows x database.
    buffer = torch.empty((rows.shape[0], n_db), dtype=dtype, device=device)
    keeper = _QueryBlockKeeper(rows, n_q, buffer)
    ranks, near_val, row_max = _nearest(x, half_sq, max(k1 + 1, k2), keeper, max_elements)
    v_idx, v_val = _encodings(x, half_sq, ranks, near_val, row_max, k1, max_elements)
    if k2 > 1:
        v_idx, v_val = _expand_queries(v_idx, v_val, ranks[:, :k2], max_elements)
    log.debug(
        "Re-ranking %d queries x %d database images: widest k-reciprocal set %d.",
        n_q,
        n_db,
        v_idx.shape[1],
    )
    _mix(buffer, half_sq, row_max, v_idx, v_val, rows, n_q, lambda_value, max_elements)
    return buffer if dtype == torch.float32 else buffer.float()


def select_difficult_positives(positives: Tensor, jaccard: Tensor, pos_num: int) -> Tensor:
    """SFRS's difficult positives: the positives the re-ranking promoted most, then the unmoved.

    Per row (OpenIBL ``ibl/utils/data/sampler.py:159-177``): the valid positives are in plain
    descriptor-distance order (original rank ``o``). They are ranked by Jaccard distance;
    ``order[r]`` is the original rank of the positive at Jaccard rank ``r`` and
    ``gap[r] = r - order[r]``. The picks are the ranks with ``gap < 0`` by ascending gap
    (largest promotion first), then those with ``gap == 0`` by ascending ``r``; positives that
    the re-ranking demoted (``gap > 0``) are dropped; the first ``pos_num`` are returned as
    database ids. Example (methods.md 4.2): Jaccard distances ``(0.5, 0.2, 0.6, 0.1, 0.7,
    0.65)`` for original ranks 0..5 pick original ranks ``(3, 5, 1)``.

    Ties: OpenIBL's ``torch.argsort`` calls are unstable (methods.md O-7); here both sorts are
    stable, so equal Jaccard distances keep the original order and equal gaps are taken by
    ascending Jaccard rank.

    Args:
        positives: ``[B, M]`` int64 database ids of each row's positives in plain-distance
            order (already cut to the pool size), ``-1``-padded at the end of a row.
        jaccard: ``[B, M]`` floating-point Jaccard distances of those positives (ignored where
            ``positives`` is -1; must be finite elsewhere).
        pos_num: Number of difficult positives wanted per row (SFRS: 10).

    Returns:
        ``[B, pos_num]`` int64 database ids, ``-1``-padded where a row has fewer picks.

    Raises:
        ValueError: Shapes, dtypes or devices do not match, ``-1`` is not only at row ends, or
            a valid distance is not finite.
        UsageError: ``pos_num`` is below 1.
    """
    if isinstance(pos_num, bool) or not isinstance(pos_num, int) or pos_num < 1:
        raise UsageError(f"pos_num must be an integer >= 1 (SFRS uses 10), got {pos_num!r}.")
    if not isinstance(positives, Tensor) or positives.dim() != 2:
        raise ValueError("positives must be a [B, M] tensor of database ids.")
    if positives.dtype != torch.int64:
        raise ValueError(f"positives must be int64, got {positives.dtype}.")
    if not isinstance(jaccard, Tensor) or jaccard.shape != positives.shape:
        got = tuple(jaccard.shape) if isinstance(jaccard, Tensor) else type(jaccard).__name__
        raise ValueError(
            f"jaccard must have the shape of positives {tuple(positives.shape)}, got {got}."
        )
    if not jaccard.is_floating_point():
        raise ValueError(f"jaccard must be floating point, got {jaccard.dtype}.")
    if jaccard.device != positives.device:
        raise ValueError(
            f"positives ({positives.device}) and jaccard ({jaccard.device}) are on different "
            "devices."
        )
    n_rows, width = positives.shape
    out = torch.full((n_rows, pos_num), -1, dtype=torch.int64, device=positives.device)
    if width == 0 or n_rows == 0:
        return out
    valid = positives >= 0
    if bool((positives < -1).any()):
        raise ValueError("positives must hold database ids >= 0, or -1 as padding.")
    if bool((valid[:, 1:] & ~valid[:, :-1]).any()):
        raise ValueError("positives must be -1-padded at the end of each row only.")
    if not bool(torch.isfinite(jaccard[valid]).all()):
        raise ValueError("jaccard must be finite wherever positives holds an id.")

    # Padding sorts last, so Jaccard ranks r < count refer to valid positives only.
    key = jaccard.masked_fill(~valid, float("inf"))
    order = torch.sort(key, dim=1, stable=True).indices
    rank = torch.arange(width, device=positives.device)
    gap = rank[None, :] - order
    in_pool = rank[None, :] < valid.sum(1, keepdim=True)
    # One integer key per Jaccard rank: promoted (gap, r) < unmoved (r) < dropped.
    dropped = width * width
    priority = torch.where(in_pool & (gap == 0), rank[None, :], dropped + rank[None, :])
    priority = torch.where(in_pool & (gap < 0), gap * width + rank[None, :], priority)
    chosen_priority, chosen = torch.sort(priority, dim=1)
    picks = positives.gather(1, order.gather(1, chosen))
    picks = picks.masked_fill(chosen_priority >= dropped, -1)
    keep = min(width, pos_num)
    out[:, :keep] = picks[:, :keep]
    return out


# -- checks -----------------------------------------------------------------------------------


def _check_descriptors(query_desc: Tensor, db_desc: Tensor) -> None:
    for name, desc in (("query_desc", query_desc), ("db_desc", db_desc)):
        if not isinstance(desc, Tensor) or desc.dim() != 2:
            raise ValueError(f"{name} must be a 2-D [images, dim] tensor.")
        if not desc.is_floating_point():
            raise ValueError(f"{name} must be floating point, got {desc.dtype}.")
        if desc.shape[0] == 0:
            raise ValueError(f"{name} holds no images.")
    if query_desc.shape[1] != db_desc.shape[1]:
        raise ValueError(
            f"Descriptor dimensions differ: queries {query_desc.shape[1]}, database "
            f"{db_desc.shape[1]}."
        )
    if query_desc.device != db_desc.device:
        raise ValueError(
            f"query_desc ({query_desc.device}) and db_desc ({db_desc.device}) are on different "
            "devices."
        )
    if not (bool(torch.isfinite(query_desc).all()) and bool(torch.isfinite(db_desc).all())):
        raise ValueError("Descriptors hold NaN or infinite values.")


def _check_rows(rows: Tensor | None, n_q: int, device: torch.device) -> Tensor:
    if rows is None:
        return torch.arange(n_q, device=device)
    if not isinstance(rows, Tensor) or rows.dim() != 1:
        raise ValueError("rows must be a 1-D tensor of query indices.")
    if rows.is_floating_point() or rows.is_complex() or rows.dtype == torch.bool:
        raise ValueError(f"rows must hold integer query indices, got {rows.dtype}.")
    rows = rows.to(device=device, dtype=torch.int64)
    if rows.numel() and (int(rows.min()) < 0 or int(rows.max()) >= n_q):
        raise ValueError(f"rows must be query indices in [0, {n_q}).")
    return rows


def _check_parameters(n: int, *, k1: int, k2: int, lambda_value: float, max_elements: int) -> None:
    def is_int(value: object) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    if not is_int(k1) or k1 < 1:
        raise UsageError(f"k1 must be an integer >= 1 (SFRS uses 20), got {k1!r}.")
    if k1 >= n:
        raise UsageError(
            f"k1={k1} needs at least k1 + 1 = {k1 + 1} images, but the queries and the database "
            f"hold {n}. Lower k1 or use more training images."
        )
    if not is_int(k2) or not 1 <= k2 <= n:
        raise UsageError(f"k2 must be an integer in [1, {n}] (SFRS uses 1), got {k2!r}.")
    if isinstance(lambda_value, bool) or not isinstance(lambda_value, int | float):
        raise UsageError(f"lambda_value must be a number in [0, 1], got {lambda_value!r}.")
    if not 0.0 <= lambda_value <= 1.0:
        raise UsageError(f"lambda_value must be in [0, 1] (SFRS uses 0.1), got {lambda_value}.")
    if not is_int(max_elements) or max_elements < 1:
        raise UsageError(f"max_elements must be an integer >= 1, got {max_elements!r}.")


# -- steps ------------------------------------------------------------------------------------


def _row_chunks(total: int, per_row: int, max_elements: int) -> Iterator[slice]:
    step = max(1, max_elements // max(1, per_row))
    for start in range(0, total, step):
        yield slice(start, min(total, start + step))


def _normalise(half_shifted: Tensor, half_rows: Tensor, row_max: Tensor) -> Tensor:
    """``D`` of step 1, in place, from ``|c|^2 / 2 - r.c`` values of a block of rows.

    Adding ``|r|^2 / 2`` gives ``e = d / 2``. Halving is exact in floating point, so
    ``e^2 / max(e^2)`` equals ``d^2 / max(d^2)`` bit for bit; ``row_max`` is ``max(e^2)``.
    """
    half_shifted.add_(half_rows[:, None]).clamp_(min=0.0).square_()
    return half_shifted.div_(row_max[:, None])


class _QueryBlockKeeper:
    """Copies the ``requested query rows x database`` parts of blocks into a buffer."""

    def __init__(self, rows: Tensor, n_q: int, buffer: Tensor) -> None:
        self.order = torch.argsort(rows)
        self.sorted_rows = rows[self.order].contiguous()
        self.n_q = n_q
        self.buffer = buffer
        # Every query in order (the usual call): plain slices instead of gathers.
        self.in_order = rows.shape[0] == n_q and bool(
            torch.equal(rows, torch.arange(n_q, device=rows.device))
        )

    def keep(self, row_range: slice, col_range: slice, values: Tensor) -> None:
        first_db = max(col_range.start, self.n_q)
        if first_db >= col_range.stop or row_range.start >= self.n_q:
            return
        target = slice(first_db - self.n_q, col_range.stop - self.n_q)
        source = slice(first_db - col_range.start, None)
        if self.in_order:
            stop = min(row_range.stop, self.n_q)
            self.buffer[row_range.start : stop, target] = values[: stop - row_range.start, source]
            return
        bounds = torch.tensor([row_range.start, row_range.stop], device=self.sorted_rows.device)
        lo, hi = torch.searchsorted(self.sorted_rows, bounds).tolist()
        if lo < hi:
            local = self.sorted_rows[lo:hi] - row_range.start
            self.buffer[self.order[lo:hi], target] = values[local, source]


def _merge_top(
    best_val: Tensor, best_idx: Tensor, rows: slice, values: Tensor, first_col: int
) -> None:
    """Fold a block's smallest values per row into the running sorted top-k of ``rows``."""
    k = best_val.shape[1]
    val, idx = torch.topk(values, min(k, values.shape[1]), dim=1, largest=False, sorted=True)
    val = torch.cat([best_val[rows], val], dim=1)
    idx = torch.cat([best_idx[rows], idx + first_col], dim=1)
    best_val[rows], pick = torch.topk(val, k, dim=1, largest=False, sorted=True)
    best_idx[rows] = idx.gather(1, pick)


def _nearest(
    x: Tensor, half_sq: Tensor, k: int, keeper: _QueryBlockKeeper, max_elements: int
) -> tuple[Tensor, Tensor, Tensor]:
    """The ``k`` nearest images of every image, their values, and every row's ``max e^2``.

    Returns ``(indices, values, row_max)``, neighbours sorted nearest first; ``values`` are
    ``|c|^2 / 2 - r.c``. ``D`` of a row is a monotone function of the row's distances, which
    differ from these values by a constant per row, so the top-k runs on them directly. The
    product matrix is symmetric: each off-diagonal block (side ``isqrt(max_elements)``) is
    computed once and serves its rows and, transposed, its columns. The requested query rows'
    database columns go to ``keeper`` on the way.
    """
    n, device = x.shape[0], x.device
    side = max(1, math.isqrt(max_elements))
    best_val = torch.full((n, k), math.inf, dtype=x.dtype, device=device)
    best_idx = torch.zeros((n, k), dtype=torch.int64, device=device)
    peak = torch.full((n,), -math.inf, dtype=x.dtype, device=device)
    starts = range(0, n, side)
    for row_start in starts:
        rs = slice(row_start, min(n, row_start + side))
        for col_start in starts[row_start // side :]:
            cs = slice(col_start, min(n, col_start + side))
            block = x[rs] @ x[cs].T
            mirror = None
            if col_start != row_start:
                mirror = torch.empty((block.shape[1], block.shape[0]), dtype=x.dtype, device=device)
                mirror.copy_(block.T)
                torch.sub(half_sq[rs][None, :], mirror, out=mirror)
            torch.sub(half_sq[cs][None, :], block, out=block)
            for r, c, values in ((rs, cs, block), (cs, rs, mirror)):
                if values is None:
                    continue
                _merge_top(best_val, best_idx, r, values, c.start)
                peak[r] = torch.maximum(peak[r], values.amax(dim=1))
            keeper.keep(rs, cs, block)
            del block, mirror
    row_max = (peak + half_sq).clamp_(min=0.0).square_()
    return best_idx, best_val, torch.where(row_max > 0, row_max, torch.ones_like(row_max))


def _reciprocal(lists: Tensor, max_elements: int) -> Tensor:
    """``mask[i, a]``: image ``i`` is in the list of its own list member ``lists[i, a]``."""
    n, k = lists.shape
    mask = torch.empty((n, k), dtype=torch.bool, device=lists.device)
    for sl in _row_chunks(n, k * k, max_elements):
        own = torch.arange(sl.start, sl.stop, device=lists.device)
        mask[sl] = (lists[lists[sl]] == own[:, None, None]).any(dim=2)
    return mask


def _unique_rows(values: Tensor, sentinel: int) -> Tensor:
    """Each row's distinct values below ``sentinel``, ascending, ``sentinel``-padded, trimmed."""
    ordered = torch.sort(values, dim=1).values
    repeat = torch.zeros_like(ordered, dtype=torch.bool)
    repeat[:, 1:] = ordered[:, 1:] == ordered[:, :-1]
    ordered = torch.sort(ordered.masked_fill(repeat, sentinel), dim=1).values
    width = max(1, int((ordered < sentinel).sum(1).max()))
    return ordered[:, :width]


def _pad_columns(parts: list[Tensor], fill: float) -> Tensor:
    width = max(p.shape[1] for p in parts)
    padded = [torch.nn.functional.pad(p, (0, width - p.shape[1]), value=fill) for p in parts]
    return torch.cat(padded)


def _encodings(
    x: Tensor,
    half_sq: Tensor,
    ranks: Tensor,
    near_val: Tensor,
    row_max: Tensor,
    k1: int,
    max_elements: int,
) -> tuple[Tensor, Tensor]:
    """Sparse ``V`` of steps 2-4: ``[n, width]`` image indices (``n`` = none) and weights."""
    n = x.shape[0]
    k_full = k1 + 1
    k_half = round(k1 / 2) + 1  # round half to even, as np.around in rerank.py:60
    full, half = ranks[:, :k_full], ranks[:, :k_half]
    in_full = _reciprocal(full, max_elements)
    in_half = _reciprocal(half, max_elements)
    half_size = in_half.sum(1)
    # Strict overlap threshold per |H(c)|, in float64 as rerank.py:64 writes it.
    threshold = torch.tensor(
        [2.0 / 3 * size for size in range(k_half + 1)], dtype=torch.float64, device=x.device
    )
    idx_parts: list[Tensor] = []
    val_parts: list[Tensor] = []
    slots = k_full * (k_half + 1)  # R(i) and every H(c), before duplicates go
    per_row = max(k_full * k_half * k_full, slots * ranks.shape[1])
    for sl in _row_chunks(n, per_row, max_elements):
        own = full[sl].masked_fill(~in_full[sl], n)  # R(i), n where not reciprocal
        cand = half[full[sl]]  # H(c) candidates of every c in F(i): [B, k_full, k_half]
        cand_ok = in_half[full[sl]]
        shared = ((cand[..., None] == own[:, None, None, :]).any(dim=3) & cand_ok).sum(2)
        accept = in_full[sl] & (shared.to(torch.float64) > threshold[half_size[full[sl]]])
        extra = cand.masked_fill(~(cand_ok & accept[..., None]), n).flatten(1)
        members = _unique_rows(torch.cat([own, extra], dim=1), n)
        idx_parts.append(members)
        val_parts.append(
            _weights(x, half_sq, ranks[sl], near_val[sl], row_max, sl, members, max_elements)
        )
    return _pad_columns(idx_parts, n).long(), _pad_columns(val_parts, 0.0)


def _weights(
    x: Tensor,
    half_sq: Tensor,
    near_idx: Tensor,
    near_val: Tensor,
    row_max: Tensor,
    sl: slice,
    members: Tensor,
    max_elements: int,
) -> Tensor:
    """Normalised ``exp(-D[i, k])`` over each row's members (step 4).

    Members among the row's nearest reuse the neighbour search's values; only the others
    (candidates' neighbours, about a fifth) need a dot product.
    """
    n, dim = x.shape
    valid = members < n
    match = members[:, :, None] == near_idx[:, None, :]
    found = match.any(dim=2)
    shifted = near_val.gather(1, match.to(torch.uint8).argmax(dim=2))
    row_of, slot_of = (valid & ~found).nonzero(as_tuple=True)
    if row_of.numel():
        image, other = row_of + sl.start, members[row_of, slot_of]
        dots = torch.empty(image.shape, dtype=x.dtype, device=x.device)
        for part in _row_chunks(image.shape[0], dim, max_elements):
            dots[part] = (x[image[part]] * x[other[part]]).sum(1)
        shifted[row_of, slot_of] = half_sq[other] - dots  # as in _nearest
    rows = torch.arange(sl.start, sl.stop, device=x.device)
    w = torch.exp(-_normalise(shifted, half_sq[rows], row_max[rows]))
    w.masked_fill_(~valid, 0.0)
    total = w.sum(1, keepdim=True)
    return w / torch.where(total > 0, total, torch.ones_like(total))


def _expand_queries(
    v_idx: Tensor, v_val: Tensor, nearest: Tensor, max_elements: int
) -> tuple[Tensor, Tensor]:
    """Step 5: each row of ``V`` becomes the mean of its ``k2`` nearest images' rows."""
    n, k2 = nearest.shape
    idx_parts: list[Tensor] = []
    val_parts: list[Tensor] = []
    for sl in _row_chunks(n, k2 * v_idx.shape[1], max_elements):
        idx = v_idx[nearest[sl]].flatten(1)
        val = v_val[nearest[sl]].flatten(1)
        idx, order = torch.sort(idx, dim=1, stable=True)
        val = val.gather(1, order)
        start = torch.ones_like(idx, dtype=torch.bool)
        start[:, 1:] = idx[:, 1:] != idx[:, :-1]
        group = start.cumsum(1) - 1
        sums = torch.zeros_like(val).scatter_add_(1, group, val)
        ids = torch.full_like(idx, n).scatter_(1, group, idx)
        width = max(1, int((ids < n).sum(1).max()))
        ids, sums = ids[:, :width], sums[:, :width]
        idx_parts.append(ids)
        val_parts.append((sums / k2).masked_fill_(ids >= n, 0.0))
    return _pad_columns(idx_parts, n).long(), _pad_columns(val_parts, 0.0)


def _query_row_chunks(
    triples: Tensor, rows_cap: int, max_elements: int
) -> Iterator[tuple[int, int, int]]:
    """``(start, stop, triples)`` chunks of rows whose Jaccard work fits ``max_elements``."""
    cum = torch.cumsum(triples.cpu(), 0)
    total, start = cum.shape[0], 0
    while start < total:
        base = int(cum[start - 1]) if start else 0
        stop = int(torch.searchsorted(cum, base + max_elements, right=True))
        stop = min(max(stop, start + 1), start + rows_cap, total)
        yield start, stop, int(cum[stop - 1]) - base
        start = stop


def _mix(
    buffer: Tensor,
    half_sq: Tensor,
    row_max: Tensor,
    v_idx: Tensor,
    v_val: Tensor,
    rows: Tensor,
    n_q: int,
    lambda_value: float,
    max_elements: int,
) -> None:
    """Steps 6-7 in place on ``buffer`` (``[rows, database]``, as :func:`_nearest` left it)."""
    n, device = half_sq.shape[0], half_sq.device
    n_db = n - n_q
    # Inverted index of the database rows of V: per image k, the (database row, weight) pairs.
    db_idx, db_val = v_idx[n_q:], v_val[n_q:]
    present = db_idx < n
    owner = torch.arange(n_db, device=device)[:, None].expand_as(db_idx)[present]
    column = db_idx[present]
    column, order = torch.sort(column, stable=True)
    col_rows, col_vals = owner[order], db_val[present][order]
    col_count = torch.bincount(column, minlength=n)
    col_start = torch.cumsum(col_count, 0) - col_count

    q_idx, q_val = v_idx[rows], v_val[rows]
    q_present = q_idx < n
    q_count = torch.where(q_present, col_count[q_idx.clamp(max=n - 1)], 0)
    rows_cap = max(1, max_elements // n_db)
    for start, stop, n_triples in _query_row_chunks(q_count.sum(1), rows_cap, max_elements):
        b = stop - start
        present_b = q_present[start:stop]
        pair_row = torch.arange(b, device=device)[:, None].expand_as(present_b)[present_b]
        pair_k = q_idx[start:stop][present_b]
        pair_v = q_val[start:stop][present_b]
        reps = col_count[pair_k]
        pair = torch.repeat_interleave(
            torch.arange(pair_k.shape[0], device=device), reps, output_size=n_triples
        )
        offset = torch.arange(n_triples, device=device) - (torch.cumsum(reps, 0) - reps)[pair]
        entry = col_start[pair_k][pair] + offset
        target = pair_row[pair] * n_db + col_rows[entry]
        overlap = torch.zeros(b * n_db, dtype=buffer.dtype, device=device)
        overlap.index_add_(0, target, torch.minimum(pair_v[pair], col_vals[entry]))
        shared = overlap[target]  # the finished sum, once per contribution (repeats alike)
        del overlap, pair, offset, entry
        idx = rows[start:stop]
        original = _normalise(buffer[start:stop], half_sq[idx], row_max[idx])
        flat = original.view(-1)
        mixed = (1.0 - shared / (2.0 - shared)) * (1.0 - lambda_value)
        mixed += flat[target] * lambda_value
        # Where nothing is shared the Jaccard distance is exactly 1.
        original.mul_(lambda_value).add_(1.0 - lambda_value)
        flat.index_put_((target,), mixed)  # repeated targets write the same value
