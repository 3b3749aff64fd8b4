"""kNN + R@N: our engine against an OpenIBL-style dense reference, side by side, one run.

Each variant runs in a fresh subprocess (``python benchmarks/test_knn.py worker ...``) limited
to 2 threads, so its peak resident memory (``VmHWM`` from ``/proc/self/status``, which sees
torch and faiss allocations) and its time belong to that variant alone. Both variants get the
same seeded random unit 4096-D float32 vectors (queries are noisy copies of database items; the
positive of a query is its source item).

* ``ours``: ``vpr_bench.eval.search.knn`` (torch backend, 256 MiB blocks) + ``recall_at_n``.
* ``reference``: the OpenIBL evaluator's way: the full ``Q x N`` squared-distance matrix
  ``||x||² + ||y||² - 2xy`` in float32, a full ``np.argsort`` of every row, then recall.

Pitts30k scale runs by default with ``make bench``; Pitts250k scale is marked slow
(``pytest benchmarks -m slow``; minutes, about 10 GB for the reference). Each run writes
``benchmarks/results/knn-<scale>.json`` and rebuilds ``benchmarks/results/knn-cpu.md``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from measure import cpu_name, peak_rss_bytes

RESULTS = Path(__file__).resolve().parent / "results"
SCALES = {"pitts30k": (10_000, 6_816), "pitts250k": (83_952, 8_280)}
DIM, THREADS, NS = 4096, 2, (1, 5, 10, 20)
# Targets at Pitts250k scale (issue 4): time and peak memory relative to the reference.
TARGET_TIME_RATIO, TARGET_MEM_RATIO = 0.6, 0.35


def _make_data(n_db: int, n_q: int) -> tuple[Any, Any, Any]:
    import numpy as np

    rng = np.random.default_rng(2024)
    db = rng.standard_normal((n_db, DIM), dtype=np.float32)
    db /= np.linalg.norm(db, axis=1, keepdims=True)
    source = rng.integers(0, n_db, size=n_q)
    q = db[source] + np.float32(0.06) * rng.standard_normal((n_q, DIM), dtype=np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return q, db, source


def _run_ours(q: Any, db: Any, source: Any) -> tuple[list[float], Any]:
    import numpy as np

    from vpr_bench.eval.metrics import recall_at_n
    from vpr_bench.eval.search import knn
    from vpr_bench.protocol import EvalProtocol
    from vpr_bench.runtime import RetrievalResult

    idx, dist = knn(q, db, max(NS), backend="torch", device="cpu")
    result = RetrievalResult(idx, dist, tuple(source[:, None].astype(np.int64)), len(db))
    recalls = recall_at_n(result, EvalProtocol("bench", recall_ns=NS))
    return [recalls[f"R@{n}"] for n in NS], idx[:, : max(NS)]


def _run_reference(q: Any, db: Any, source: Any) -> tuple[list[float], Any]:
    """OpenIBL-style: dense squared-distance matrix, full argsort per row, recall."""
    import numpy as np
    import torch

    x, y = torch.from_numpy(q), torch.from_numpy(db)
    m, n = x.shape[0], y.shape[0]
    distmat = (
        torch.pow(x, 2).sum(dim=1, keepdim=True).expand(m, n)
        + torch.pow(y, 2).sum(dim=1, keepdim=True).expand(n, m).t()
    )
    distmat.addmm_(x, y.t(), beta=1, alpha=-2)
    order = np.argsort(distmat.numpy(), axis=1)
    correct = np.zeros(len(NS))
    for row, src in zip(order, source, strict=True):
        for i, n_ in enumerate(NS):
            if np.isin(row[:n_], [src]).any():
                correct[i:] += 1
                break
    return [100.0 * c / m for c in correct], order[:, : max(NS)]


def _worker(variant: str, n_db: int, n_q: int, out: str) -> None:
    import numpy as np
    import torch

    torch.set_num_threads(THREADS)
    q, db, source = _make_data(n_db, n_q)
    rss_data = peak_rss_bytes()
    start = time.perf_counter()
    recalls, top = (_run_ours if variant == "ours" else _run_reference)(q, db, source)
    seconds = time.perf_counter() - start
    np.save(out, top)
    info = {
        "variant": variant,
        "seconds": seconds,
        "peak_rss": peak_rss_bytes(),
        "rss_after_data": rss_data,
        "recalls": recalls,
    }
    print(json.dumps(info))


def _spawn(variant: str, n_db: int, n_q: int, tmp: Path) -> dict[str, Any]:
    env = dict(
        os.environ,
        OMP_NUM_THREADS=str(THREADS),
        MKL_NUM_THREADS=str(THREADS),
        OPENBLAS_NUM_THREADS=str(THREADS),
    )
    out = tmp / f"{variant}.npy"
    proc = subprocess.run(
        [sys.executable, __file__, "worker", variant, str(n_db), str(n_q), str(out)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        raise AssertionError(f"{variant} worker failed:\n{proc.stderr[-4000:]}")
    info: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    info["top_path"] = str(out)
    return info


def _environment() -> dict[str, str]:
    import faiss
    import numpy as np
    import torch

    cpu = cpu_name()
    return {
        "date": dt.date.today().isoformat(),
        "cpu": cpu,
        "threads": str(THREADS),
        "torch": torch.__version__,
        "faiss": faiss.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def _fmt(x: float | None) -> str:
    return "not recorded" if x is None else f"{x:.1f}"


def _write_report() -> None:
    rows = []
    for path in sorted(RESULTS.glob("knn-pitts*.json")):
        rows.append(json.loads(path.read_text()))
    lines = [
        "# kNN + R@N on CPU: our engine vs an OpenIBL-style dense reference",
        "",
        "Written by `benchmarks/test_knn.py` (each variant in a fresh subprocess, 2 threads,",
        "peak RSS = VmHWM including the input vectors). Ratios are ours / reference, "
        "measured side by side in one run.",
        "",
    ]
    for r in rows:
        env, ours, ref = r["environment"], r["ours"], r["reference"]
        lines += [
            f"## {r['scale']}: {r['n_db']} database x {r['n_q']} queries, {DIM}-D",
            "",
            f"{env['date']}, {env['cpu']}, {env['threads']} threads; torch {env['torch']}, "
            f"faiss {env['faiss']}, numpy {env['numpy']}, Python {env['python']}.",
            "",
            "| variant | time (s) | peak RSS (GiB) | RSS after data (GiB) | R@1/5/10/20 |",
            "|---|---|---|---|---|",
        ]
        for name, v in (("ours", ours), ("reference", ref)):
            rec = "/".join(f"{x:.2f}" for x in v["recalls"])
            lines.append(
                f"| {name} | {v['seconds']:.2f} | {v['peak_rss'] / 2**30:.2f} | "
                f"{v['rss_after_data'] / 2**30:.2f} | {rec} |"
            )
        lines += [
            "",
            f"Time ratio {r['time_ratio']:.3f} (target <= {TARGET_TIME_RATIO} at "
            f"Pitts250k), peak-memory ratio {r['mem_ratio']:.3f} (target <= "
            f"{TARGET_MEM_RATIO}). Same top-1: {100 * r['same_top1']:.2f} % of queries; same "
            f"top-20 list: {100 * r['same_top20_rows']:.2f} % (the rest differ only among "
            "near-equal distances, which the two distance formulas round differently). "
            f"1-min load average at the start: {_fmt(r.get('load_avg_start'))}, after the "
            f"run: {r['load_avg_after']:.1f} (shared machine).",
            "",
        ]
        if prev := r.get("previous"):
            lines += [
                f"Previous run ({prev['date']}, load at start {_fmt(prev['load_avg_start'])}, "
                f"after {_fmt(prev['load_avg_after'])}): ours {prev['seconds']:.2f} s.",
                "",
                "| ratio (ours / reference) | previous run | this run |",
                "|---|---|---|",
                f"| time ratio | {prev['time_ratio']:.3f} | {r['time_ratio']:.3f} |",
                f"| peak-memory ratio | {prev['mem_ratio']:.3f} | {r['mem_ratio']:.3f} |",
                "",
            ]
    from vpr_bench.atomic import atomic_write_text

    atomic_write_text(RESULTS / "knn-cpu.md", "\n".join(lines))


def _compare(scale: str, tmp_path: Path, benchmark: Any) -> dict[str, Any]:
    import numpy as np

    from vpr_bench.atomic import atomic_write_json

    n_db, n_q = SCALES[scale]
    box: dict[str, Any] = {}
    load_start = os.getloadavg()[0]
    path = RESULTS / f"knn-{scale}.json"
    previous = json.loads(path.read_text()) if path.exists() else None

    def run_both() -> None:
        box["ours"] = _spawn("ours", n_db, n_q, tmp_path)
        box["reference"] = _spawn("reference", n_db, n_q, tmp_path)

    benchmark.pedantic(run_both, rounds=1, iterations=1)
    ours, ref = box["ours"], box["reference"]
    a, b = np.load(ours.pop("top_path")), np.load(ref.pop("top_path"))
    record = {
        "scale": scale,
        "n_db": n_db,
        "n_q": n_q,
        "environment": _environment(),
        "ours": ours,
        "reference": ref,
        "time_ratio": ours["seconds"] / ref["seconds"],
        "mem_ratio": ours["peak_rss"] / ref["peak_rss"],
        "same_top1": float((a[:, 0] == b[:, 0]).mean()),
        "same_top20_rows": float((a == b).all(axis=1).mean()),
        "load_avg_start": load_start,
        "load_avg_after": os.getloadavg()[0],
    }
    if previous is not None:  # the last committed run, for a before/after line in the report
        record["previous"] = {
            k: previous.get(k)
            for k in ("time_ratio", "mem_ratio", "load_avg_start", "load_avg_after")
        } | {"date": previous["environment"]["date"], "seconds": previous["ours"]["seconds"]}
    benchmark.extra_info.update({k: record[k] for k in ("time_ratio", "mem_ratio", "same_top1")})
    atomic_write_json(path, record)
    _write_report()
    assert ours["recalls"] == ref["recalls"]
    return record


def test_knn_recall_pitts30k_scale(benchmark: Any, tmp_path: Path) -> None:
    record = _compare("pitts30k", tmp_path, benchmark)
    # At this scale the input vectors dominate both peaks and the shared machine's load makes
    # times noisy; the targets apply at Pitts250k scale. Same answers, less memory:
    assert record["mem_ratio"] < 1.0
    assert record["same_top1"] == 1.0


@pytest.mark.slow
def test_knn_recall_pitts250k_scale(benchmark: Any, tmp_path: Path) -> None:
    record = _compare("pitts250k", tmp_path, benchmark)
    assert record["time_ratio"] <= TARGET_TIME_RATIO
    assert record["mem_ratio"] <= TARGET_MEM_RATIO


if __name__ == "__main__" and len(sys.argv) == 6 and sys.argv[1] == "worker":
    _worker(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
