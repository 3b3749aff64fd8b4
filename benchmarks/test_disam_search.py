"""DISAM's mean-cos retrieval at CMU-slice size: ours (one matrix product) against the original
per-pair loop.

A CMU-Seasons slice has up to 544 database images (s2's pose file); DISAM compares each query's
256x64x64 code with every same-camera database code, one pair at a time
(``disam_model.py:146-166``: ``CosineSimilarity(dim=1, eps=1e-8)`` on ``[256, 4096]`` views, the
mean over channels, a strict ``<`` scan). Here 500 queries against 544 database codes of
256 channels; on a CPU the spatial map is 16x16 (1/16 of the 64x64 codes, 65 536-d), on a GPU
the full 1 048 576-d (``GPU=1``).

* ``ours``: :func:`vpr_bench_disam.metrics.meancos_descriptor` of both sides (every channel map
  L2-normalised, / sqrt(C)), then ``-(q @ db.T)`` and the first minimum per query
  (:func:`vpr_bench_disam.metrics.first_argmin`);
* ``reference``: the loop above, written here from that description.

Both run in fresh subprocesses limited to 2 threads (``OMP_WAIT_POLICY=PASSIVE``); memory is
``VmHWM`` (peak RSS) and the growth of that peak during the search (above the peak reached
while the codes were made, so a lower bound of the search's own memory). The picks must be
identical. Writes ``results/disam-search-cpu.json`` and ``.md``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from measure import environment, peak_rss_bytes

RESULTS = Path(__file__).resolve().parent / "results"
N_Q, N_DB, CHANNELS = 500, 544, 256
SIDE = int(os.environ.get("DISAM_SIDE", "16"))  # 64 = the real codes (1 048 576-d)
THREADS = 2


def _codes() -> tuple[Any, Any]:
    """Seeded codes: queries are noisy copies of random database codes (a clear nearest)."""
    import torch

    generator = torch.Generator().manual_seed(2021)
    db = torch.randn(N_DB, CHANNELS, SIDE, SIDE, generator=generator)
    picks = torch.randint(N_DB, (N_Q,), generator=generator)
    noise = torch.randn(N_Q, CHANNELS, SIDE, SIDE, generator=generator)
    return db[picks] + 2.0 * noise, db


def _reference(q: Any, db: Any) -> Any:
    import torch

    mean_cos = torch.nn.CosineSimilarity(dim=1, eps=1e-8)
    out = torch.empty(q.shape[0], dtype=torch.long)
    with torch.no_grad():
        for i in range(q.shape[0]):
            best, index = float("inf"), 0
            query = q[i].view(CHANNELS, -1)
            for j in range(db.shape[0]):
                dist = float(-mean_cos(query, db[j].view(CHANNELS, -1)).mean(0))
                if dist < best:
                    best, index = dist, j
            out[i] = index
    return out


def _ours(q: Any, db: Any) -> Any:
    import torch

    from vpr_bench_disam.metrics import first_argmin, meancos_descriptor

    with torch.no_grad():
        return first_argmin(-(meancos_descriptor(q) @ meancos_descriptor(db).T))


def _worker(variant: str, out: str) -> None:
    import torch

    torch.set_num_threads(THREADS)
    q, db = _codes()
    base = peak_rss_bytes()
    start, cpu = time.perf_counter(), time.process_time()
    picks = (_ours if variant == "ours" else _reference)(q, db)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    peak = peak_rss_bytes()
    Path(out).write_text(
        json.dumps(
            {
                "seconds": seconds,
                "cpu_seconds": cpu_seconds,
                "peak_rss": peak,
                "working_bytes": peak - base,
                "picks": picks.tolist(),
            }
        )
    )


def _spawn(variant: str, tmp: Path) -> dict[str, Any]:
    out = tmp / f"{variant}.json"
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(THREADS),
        "OMP_WAIT_POLICY": "PASSIVE",
        "PYTHONPATH": os.pathsep.join(
            [str(Path(__file__).resolve().parent), os.environ.get("PYTHONPATH", "")]
        ),
    }
    proc = subprocess.run(
        [sys.executable, __file__, "worker", variant, str(out)],
        env=env,
        check=False,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def _write_report(r: dict[str, Any]) -> None:
    mib = 1 << 20
    lines = [
        "# DISAM mean-cos search, CPU",
        "",
        f"{r['n_q']} queries x {r['n_db']} database codes of {r['channels']}x{r['side']}x"
        f"{r['side']} ({r['dim']:,}-d; the real codes are 64x64, 1 048 576-d), 2 threads, each "
        "variant in its own process. The machine was shared (load average "
        f"{r['load_avg_start']:.1f} at the start, {r['load_avg_after']:.1f} after).",
        "",
        "| variant | wall s | CPU s | peak RSS MiB | peak growth in the search MiB |",
        "|---|---|---|---|---|",
    ]
    for name in ("ours", "reference"):
        v = r[name]
        lines.append(
            f"| {name} | {v['seconds']:.2f} | {v['cpu_seconds']:.2f} | "
            f"{v['peak_rss'] / mib:.0f} | {v['working_bytes'] / mib:.0f} |"
        )
    lines += [
        "",
        f"Speed-up {r['speedup']:.1f}x (CPU time {r['cpu_speedup']:.1f}x); identical picks: "
        f"{r['same_picks']:.0%}. Environment: {r['environment']}.",
        "",
    ]
    (RESULTS / "disam-search-cpu.md").write_text("\n".join(lines))


def test_disam_meancos_search_cmu_slice(benchmark: Any, tmp_path: Path) -> None:
    from vpr_bench.atomic import atomic_write_json

    box: dict[str, Any] = {}
    load_start = os.getloadavg()[0]

    def run_both() -> None:
        box["ours"] = _spawn("ours", tmp_path)
        box["reference"] = _spawn("reference", tmp_path)

    benchmark.pedantic(run_both, rounds=1, iterations=1)
    ours, ref = box["ours"], box["reference"]
    same = sum(a == b for a, b in zip(ours.pop("picks"), ref.pop("picks"), strict=True)) / N_Q
    record = {
        "n_q": N_Q,
        "n_db": N_DB,
        "channels": CHANNELS,
        "side": SIDE,
        "dim": CHANNELS * SIDE * SIDE,
        "environment": environment(THREADS),
        "ours": ours,
        "reference": ref,
        "speedup": ref["seconds"] / ours["seconds"],
        "cpu_speedup": ref["cpu_seconds"] / ours["cpu_seconds"],
        "same_picks": same,
        "load_avg_start": load_start,
        "load_avg_after": os.getloadavg()[0],
    }
    benchmark.extra_info.update({k: record[k] for k in ("speedup", "same_picks")})
    RESULTS.mkdir(exist_ok=True)
    atomic_write_json(RESULTS / "disam-search-cpu.json", record)
    _write_report(record)
    assert record["same_picks"] == 1.0
    assert record["speedup"] > 1.0


if __name__ == "__main__" and len(sys.argv) == 4 and sys.argv[1] == "worker":
    _worker(sys.argv[2], sys.argv[3])
