"""SFRS's k-reciprocal re-ranking at Pitts30k-train scale: ours against an OpenIBL-style version.

One cache refresh of SFRS (generations >= 1, methods.md Part A 4.3): the re-ranked
``queries x database`` distance for 7 416 training queries and 10 000 database images (k1 20,
k2 1, lambda 0.1), then the difficult positives (pos_pool 20, pos_num 10) of every query.

Descriptors: 256-D float32 unit vectors in 500 synthetic "places" (a random unit centre each plus
Gaussian noise, renormalised; 20 database images per place, queries at random places). 256-D
keeps the distance products affordable on two cores; OpenIBL's dense re-ranking works on the
distance matrices, so its cost does not depend on the dimension, while ours grows with it (the
``n x n x D`` product of the neighbour search).

Each variant runs in a fresh subprocess (``python benchmarks/test_rerank.py worker ...``)
limited to 2 threads, so its time and peak resident memory belong to it alone. OpenMP threads
wait passively (``OMP_WAIT_POLICY=PASSIVE``, both variants): on a loaded shared machine, threads
spinning at barriers while the other core is busy made ours two to three times slower. Memory is
``VmHWM`` from ``/proc/self/status`` (the process's peak RSS; it sees NumPy and torch
allocations alike), reported as the whole peak and as the working memory above the RSS after
imports and data.

* ``ours``: :func:`vpr_bench.train.rerank.jaccard_distances` (default 2**24-element chunks),
  median of 3 runs in its process (the machine is shared, so single runs are noisy).
* ``reference``: the OpenIBL way (``examples/netvlad_img_sfrs.py:80-85`` and
  ``ibl/utils/rerank.py``): the q x db, q x q and db x db squared distances in torch, then dense
  NumPy float32 ``n x n`` matrices (distances, encodings), a full ``np.argsort`` of every row and
  Python loops per image; written here from that description. One run (it takes 20-30 s).

The picks of :func:`~vpr_bench.train.rerank.select_difficult_positives` on the same positive
lists (same-place database images in plain-distance order, first 20) must be identical. Each
run writes ``benchmarks/results/rerank-cpu.json`` and ``rerank-cpu.md``. Takes under a minute
and 7 GB (the reference).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from measure import environment, peak_rss_bytes

RESULTS = Path(__file__).resolve().parent / "results"
N_Q, N_DB, DIM, PLACES, NOISE = 7_416, 10_000, 256, 500, 0.07
K1, K2, LAMBDA, POS_POOL, POS_NUM = 20, 1, 0.1, 20, 10
THREADS, OURS_RUNS = 2, 3
GOAL_SPEEDUP, GOAL_MEM_RATIO = 10.0, 0.25


def _make_data() -> tuple[Any, Any, Any, Any]:
    """Queries, database and their place labels (seeded)."""
    import numpy as np

    rng = np.random.default_rng(2025)
    centres = rng.standard_normal((PLACES, DIM), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    db_place = np.arange(N_DB) % PLACES
    q_place = rng.integers(0, PLACES, size=N_Q)
    x = centres[np.concatenate([q_place, db_place])]
    x = x + np.float32(NOISE) * rng.standard_normal(x.shape, dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x[:N_Q], x[N_Q:], q_place, db_place


def _squared_l2(a: Any, b: Any) -> Any:
    """OpenIBL's pairwise distance (``ibl/evaluators.py:127-129``), float32, unclamped."""
    import torch

    x, y = torch.from_numpy(a), torch.from_numpy(b)
    dist = (x * x).sum(1, keepdim=True) + (y * y).sum(1)[None, :]
    return dist.addmm_(x, y.T, beta=1, alpha=-2).numpy()


def _reciprocal(ranking: Any, i: int, size: int) -> Any:
    """The members of image ``i``'s ``size`` nearest that have ``i`` among their own."""
    near = ranking[i, :size]
    return near[(ranking[near, :size] == i).any(axis=1)]


def _reference(q: Any, db: Any) -> Any:
    """OpenIBL-style dense re-ranking: every matrix ``n x n`` float32, loops per image."""
    import numpy as np

    n_q = len(q)
    qg, qq, gg = _squared_l2(q, db), _squared_l2(q, q), _squared_l2(db, db)
    dist = np.concatenate([np.concatenate([qq, qg], 1), np.concatenate([qg.T, gg], 1)], 0)
    del qq, gg
    dist = np.power(dist, 2).astype(np.float32)
    dist = np.transpose(dist / np.max(dist, axis=0))
    n = len(dist)
    encoding = np.zeros_like(dist)
    ranking = np.argsort(dist).astype(np.int32)
    half = int(np.around(K1 / 2.0)) + 1

    for i in range(n):
        core = _reciprocal(ranking, i, K1 + 1)
        parts = [core]
        for c in core:
            around = _reciprocal(ranking, int(c), half)
            if len(np.intersect1d(around, core)) > 2.0 / 3 * len(around):
                parts.append(around)
        cols = np.unique(np.concatenate(parts))
        weight = np.exp(-dist[i, cols])
        encoding[i, cols] = weight / np.sum(weight)
    dist = dist[:n_q]
    del ranking
    holders = [np.flatnonzero(encoding[:, k] != 0) for k in range(n)]
    jaccard = np.zeros_like(dist)
    for i in range(n_q):
        shared = np.zeros((1, n), dtype=np.float32)
        for k in np.flatnonzero(encoding[i] != 0):
            h = holders[k]
            shared[0, h] += np.minimum(encoding[i, k], encoding[h, k])
        jaccard[i] = 1 - shared / (2.0 - shared)
    final = jaccard * (1 - LAMBDA) + dist * LAMBDA
    return final[:, n_q:]


def _ours(q: Any, db: Any) -> Any:
    import torch

    from vpr_bench.train.rerank import jaccard_distances

    out = jaccard_distances(torch.from_numpy(q), torch.from_numpy(db), k1=K1, k2=K2)
    return out.numpy()


def _worker(variant: str, out: str) -> None:
    import numpy as np
    import torch

    torch.set_num_threads(THREADS)
    import vpr_bench.train.rerank  # noqa: F401  (imported before the baseline RSS)

    q, db, _, _ = _make_data()
    rss_data = peak_rss_bytes()
    walls, cpus, result = [], [], None
    for _ in range(OURS_RUNS if variant == "ours" else 1):
        result = None  # one result alive at a time, so the peak is that of one refresh
        wall, cpu = time.perf_counter(), time.process_time()
        result = (_ours if variant == "ours" else _reference)(q, db)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    peak = peak_rss_bytes()
    np.save(out, np.ascontiguousarray(result, dtype=np.float32))
    info = {
        "variant": variant,
        "seconds": statistics.median(walls),
        "cpu_seconds": statistics.median(cpus),
        "all_seconds": walls,
        "peak_rss": peak,
        "rss_after_data": rss_data,
    }
    print(json.dumps(info))


def _spawn(variant: str, tmp: Path) -> dict[str, Any]:
    env = dict(
        os.environ,
        OMP_NUM_THREADS=str(THREADS),
        MKL_NUM_THREADS=str(THREADS),
        OPENBLAS_NUM_THREADS=str(THREADS),
        OMP_WAIT_POLICY="PASSIVE",
    )
    out = tmp / f"{variant}.npy"
    proc = subprocess.run(
        [sys.executable, __file__, "worker", variant, str(out)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        raise AssertionError(f"{variant} worker failed:\n{proc.stderr[-4000:]}")
    info: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    info["working_bytes"] = info["peak_rss"] - info["rss_after_data"]
    info["result_path"] = str(out)
    return info


def _positive_lists(q: Any, db: Any, q_place: Any, db_place: Any) -> Any:
    """Same-place database ids of each query in plain-distance order, first POS_POOL."""
    import numpy as np
    import torch

    per_place = N_DB // PLACES
    members = np.stack([np.flatnonzero(db_place == p) for p in range(PLACES)])  # [P, 20]
    cand = torch.from_numpy(members[q_place])  # [Q, per_place]
    qt, dbt = torch.from_numpy(q), torch.from_numpy(db)
    dist = ((qt[:, None, :] - dbt[cand]) ** 2).sum(2)
    order = torch.sort(dist, dim=1, stable=True).indices[:, : min(POS_POOL, per_place)]
    return cand.gather(1, order)


def _write_report(r: dict[str, Any]) -> None:
    env, ours, ref = r["environment"], r["ours"], r["reference"]
    gib = 2**30
    lines = [
        "# SFRS k-reciprocal re-ranking at Pitts30k-train scale, CPU",
        "",
        "Written by `benchmarks/test_rerank.py`: one cache refresh, ours "
        "(`vpr_bench.train.rerank.jaccard_distances`) against an OpenIBL-style dense NumPy "
        "re-ranking, side by side in one run, each in a fresh subprocess with "
        f"{env['threads']} threads and `OMP_WAIT_POLICY=PASSIVE` (with OpenMP's default "
        "spinning, ours took 6.2-10.8 s instead of 3.1-3.2 s in a same-code comparison on "
        "this machine under load).",
        "",
        f"{env['date']}, {env['cpu']} (shared machine, load average "
        f"{r['load_avg_start']:.2f} before, {r['load_avg_after']:.2f} after); torch "
        f"{env['torch']}, numpy {env['numpy']}, Python {env['python']}.",
        "",
        f"{r['n_q']} queries + {r['n_db']} database images = {r['n_q'] + r['n_db']} graph nodes, "
        f"{r['dim']}-D float32 unit descriptors in {PLACES} synthetic places; k1 {K1}, k2 {K2}, "
        f"lambda {LAMBDA}; difficult positives with pos_pool {POS_POOL}, pos_num {POS_NUM}. "
        "Time: the re-ranking from descriptors to the q x db matrix (both variants compute "
        "their own distances). Memory: peak RSS (`VmHWM`), and working memory = peak RSS "
        "minus the RSS after imports and data.",
        "",
        "| variant | wall time (s) | CPU time (s) | peak RSS (GiB) | RSS after data (GiB) "
        "| working memory (GiB) |",
        "|---|---|---|---|---|---|",
    ]
    for name, v in (("ours (median of 3)", ours), ("OpenIBL-style dense (1 run)", ref)):
        lines.append(
            f"| {name} | {v['seconds']:.2f} | {v['cpu_seconds']:.2f} | "
            f"{v['peak_rss'] / gib:.2f} | "
            f"{v['rss_after_data'] / gib:.2f} | {v['working_bytes'] / gib:.2f} |"
        )
    lines += [
        "",
        f"* Speed-up (wall): **{r['speedup']:.1f}x** (goal >= {GOAL_SPEEDUP:g}x: "
        f"{'met' if r['speedup_goal_met'] else 'not met'}); in CPU time "
        f"{r['cpu_speedup']:.1f}x (ours uses both threads in its products and top-k, the "
        "reference mostly one). Ours' three runs: "
        + ", ".join(f"{t:.2f}" for t in ours["all_seconds"])
        + " s.",
        f"* Peak-RSS ratio ours / reference: **{r['mem_ratio']:.3f}**; working-memory ratio: "
        f"**{r['working_mem_ratio']:.3f}** (goal <= {GOAL_MEM_RATIO}: "
        f"{'met' if r['mem_goal_met'] else 'not met'} on peak RSS). Ours holds the "
        f"{r['n_q']} x {r['n_db']} float32 result ({r['result_bytes'] / gib:.2f} GiB) itself.",
        f"* Largest absolute difference of the two matrices: {r['max_abs_diff']:.2e}.",
        f"* Difficult positives identical for {100 * r['same_picks']:.2f} % of queries "
        f"({r['queries_reranked']} of {r['n_q']} queries have picks other than their "
        f"{POS_NUM} plainly nearest positives).",
        "",
    ]
    (RESULTS / "rerank-cpu.md").write_text("\n".join(lines))


def test_rerank_refresh_pitts30k_scale(benchmark: Any, tmp_path: Path) -> None:
    import numpy as np
    import torch

    from vpr_bench.atomic import atomic_write_json
    from vpr_bench.train.rerank import select_difficult_positives

    box: dict[str, Any] = {}
    load_start = os.getloadavg()[0]

    def run_both() -> None:
        box["ours"] = _spawn("ours", tmp_path)
        box["reference"] = _spawn("reference", tmp_path)

    benchmark.pedantic(run_both, rounds=1, iterations=1)
    ours, ref = box["ours"], box["reference"]
    a = np.load(ours.pop("result_path"))
    b = np.load(ref.pop("result_path"))
    q, db, q_place, db_place = _make_data()
    positives = _positive_lists(q, db, q_place, db_place)
    picks = [
        select_difficult_positives(positives, torch.from_numpy(m).gather(1, positives), POS_NUM)
        for m in (a, b)
    ]
    same = (picks[0] == picks[1]).all(1)
    plain = positives[:, :POS_NUM]
    record = {
        "n_q": N_Q,
        "n_db": N_DB,
        "dim": DIM,
        "environment": environment(THREADS),
        "ours": ours,
        "reference": ref,
        "speedup": ref["seconds"] / ours["seconds"],
        "cpu_speedup": ref["cpu_seconds"] / ours["cpu_seconds"],
        "mem_ratio": ours["peak_rss"] / ref["peak_rss"],
        "working_mem_ratio": ours["working_bytes"] / ref["working_bytes"],
        "result_bytes": a.nbytes,
        "max_abs_diff": float(np.abs(a - b).max()),
        "same_picks": float(same.double().mean()),
        "queries_reranked": int((picks[1] != plain).any(1).sum()),
        "load_avg_start": load_start,
        "load_avg_after": os.getloadavg()[0],
    }
    record["speedup_goal_met"] = record["speedup"] >= GOAL_SPEEDUP
    record["mem_goal_met"] = record["mem_ratio"] <= GOAL_MEM_RATIO
    benchmark.extra_info.update(
        {k: record[k] for k in ("speedup", "mem_ratio", "max_abs_diff", "same_picks")}
    )
    RESULTS.mkdir(exist_ok=True)
    atomic_write_json(RESULTS / "rerank-cpu.json", record)
    _write_report(record)
    assert record["same_picks"] == 1.0
    assert record["max_abs_diff"] <= 1e-4
    assert record["speedup"] > 1.0 and record["mem_ratio"] < 1.0


if __name__ == "__main__" and len(sys.argv) == 4 and sys.argv[1] == "worker":
    _worker(sys.argv[2], sys.argv[3])
