"""The stages of the GPU proof that run Python code (each in its own process, see gpu_check.py).

Usage: ``python stages.py STAGE CONFIG.json RESULT.json``. ``CONFIG`` is the driver's settings
(device, sizes, paths); the stage writes its figures and checks to ``RESULT`` as JSON. A crash
or a hang of one stage is contained by the driver, which still writes the report.

Stages here: ``env`` (versions, device), ``synthcity`` (generate the evaluation city),
``mining`` (one Pitts30k-train-scale mining refresh, CUDA against CPU) and ``demo_compare``
(the quick demo's records against the CPU references). The side-by-side extraction and search
benchmark is in ``sidebyside.py``.
"""

from __future__ import annotations

import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

Result = dict[str, Any]


def check(name: str, ok: bool | None, detail: str) -> dict[str, str]:
    """One check row: PASS/FAIL (``ok``) or SKIP (``ok is None``)."""
    status = "SKIP" if ok is None else ("PASS" if ok else "FAIL")
    return {"name": name, "status": status, "detail": detail}


def sync(device: str) -> None:
    """Wait for the device (no-op on CPU)."""
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def median_time(fn: Callable[[], object], device: str, repeats: int) -> tuple[float, list[float]]:
    """Median wall seconds of ``repeats`` calls of ``fn`` (device synchronised around each)."""
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


# -- env -------------------------------------------------------------------------------------
def _nvidia_smi() -> dict[str, str]:
    query = "name,driver_version,memory.total"
    try:
        out = subprocess.run(
            ["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {}
    first = [part.strip() for part in out.splitlines()[0].split(",")] if out else []
    return dict(zip(["smi_name", "driver", "smi_memory"], first, strict=False))


def _git_sha(repo: Path) -> str:
    # Not vpr_bench.provenance.git_sha: the env stage runs before the harness is installed.
    try:
        return subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def stage_env(cfg: dict[str, Any]) -> Result:
    """Versions, the device and what is available (faiss, bf16)."""
    import numpy as np
    import torch

    env: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_file": torch.__file__,
        "torch_cuda": str(torch.version.cuda or ""),
        "cudnn": str(torch.backends.cudnn.version() or ""),
        "numpy": np.__version__,
        "git_sha": _git_sha(Path(cfg["repo"])),
        "cuda_available": torch.cuda.is_available(),
        "cudnn_allow_tf32": bool(torch.backends.cudnn.allow_tf32),
        "matmul_allow_tf32": bool(torch.backends.cuda.matmul.allow_tf32),
    }
    try:
        import vpr_bench

        env["vpr_bench_file"] = vpr_bench.__file__
    except ImportError as exc:
        env["vpr_bench_file"] = f"not importable: {exc}"
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        env.update(
            device_name=props.name,
            capability=f"{props.major}.{props.minor}",
            device_memory_gib=round(props.total_memory / 2**30, 1),
            bf16_supported=bool(torch.cuda.is_bf16_supported()),
            device_count=torch.cuda.device_count(),
        )
        try:
            version = torch.cuda.nccl.version()
            env["nccl"] = (
                ".".join(map(str, version)) if isinstance(version, tuple) else str(version)
            )
        except Exception as exc:  # not fatal: the NCCL test says whether it works
            env["nccl"] = f"unknown ({exc})"
    else:
        env.update(device_name=f"cpu ({platform.processor() or platform.machine()})")
    env.update(_nvidia_smi())
    if "driver" not in env and torch.cuda.is_available():
        try:  # no nvidia-smi: the CUDA driver API version (e.g. 13000 for 13.0)
            env["driver"] = f"CUDA driver API {torch._C._cuda_getDriverVersion()}"
        except Exception:  # a private API: absent in some builds
            env["driver"] = "unknown (no nvidia-smi)"
    try:
        import faiss  # type: ignore[import-not-found]

        env["faiss"] = str(getattr(faiss, "__version__", "?"))
        env["faiss_gpus"] = int(faiss.get_num_gpus()) if hasattr(faiss, "get_num_gpus") else 0
    except ImportError:
        env["faiss"] = ""
        env["faiss_gpus"] = 0
    ok = env["cuda_available"] if cfg["device"].startswith("cuda") else True
    return {
        "env": env,
        "checks": [check("cuda_available", ok, f"device {cfg['device']}: {env['device_name']}")],
    }


# -- synthcity -------------------------------------------------------------------------------
def stage_synthcity(cfg: dict[str, Any]) -> Result:
    """Generate (or reuse) the city the demo and the R@1 comparison use."""
    from vpr_bench.data.synthcity import prepare, read_manifest

    start = time.perf_counter()
    folder = prepare(Path(cfg["data_root"]), cfg["synthcity_size"], seed=0, progress=False)
    manifest = read_manifest(folder) or {}
    seconds = time.perf_counter() - start
    return {
        "figures": {"synthcity_seconds": round(seconds, 1)},
        "synthcity_folder": str(folder),
        "checks": [
            check(
                "synthcity_generated",
                manifest.get("size") == cfg["synthcity_size"],
                f"{folder.name}: {manifest.get('files')} files in {seconds:.1f} s",
            )
        ],
    }


# -- mining ----------------------------------------------------------------------------------
def _mining_data(n_q: int, n_db: int, dim: int) -> tuple[Any, Any, Any]:
    """The data of ``benchmarks/test_mining.py``: seeded unit descriptors on a 1-D street."""
    import numpy as np

    from vpr_bench.train.mining import training_ground_truth

    rng = np.random.default_rng(0)
    db = rng.standard_normal((n_db, dim), dtype=np.float32)
    db /= np.linalg.norm(db, axis=1, keepdims=True)
    q = rng.standard_normal((n_q, dim), dtype=np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    db_utm = np.stack([np.arange(n_db) * 2.0, np.zeros(n_db)], axis=1)
    q_utm = np.stack([rng.uniform(0, 2.0 * n_db, n_q), np.zeros(n_q)], axis=1)
    gt = training_ground_truth(db_utm, q_utm, 10.0, 25.0)
    return q[gt.query_ids], db, gt


def _committed_cpu_figure(repo: Path) -> float | None:
    path = repo / "benchmarks" / "results" / "mining-cpu.md"
    try:
        found = re.search(r"\| ours \(TupleMiner[^|]*\| ([0-9.]+) \|", path.read_text())
    except OSError:
        return None
    return float(found.group(1)) if found else None


def stage_mining(cfg: dict[str, Any]) -> Result:
    """One mining refresh (one chunk) with TupleMiner on the device and on the CPU, same data."""
    import numpy as np
    import torch

    from vpr_bench.train.mining import TupleMiner

    size = cfg["mining"]
    torch.set_num_threads(os.cpu_count() or 1)
    q, db, gt = _mining_data(size["n_q"], size["n_db"], size["dim"])
    chunk = torch.from_numpy(np.random.default_rng(1).permutation(len(q))[: size["chunk"]])
    q_t, db_t = torch.from_numpy(q), torch.from_numpy(db)
    plans: dict[str, torch.Tensor] = {}
    seconds: dict[str, float] = {}
    device = cfg["device"]
    for where in dict.fromkeys(["cpu", device]):
        # Descriptors already on the device, as in training (the cache is extracted there).
        q_dev, db_dev = q_t[chunk].to(where), db_t.to(where)
        times = []
        for _ in range(4):  # the first is a warm-up (CUDA context, kernels)
            miner = TupleMiner(gt, neg_num=size["neg_num"], neg_pool=size["neg_pool"], device=where)
            sync(where)
            start = time.perf_counter()
            plans[where] = miner.mine(chunk, q_dev, db_dev, seed=0)
            sync(where)
            times.append(time.perf_counter() - start)
        seconds[where] = statistics.median(times[1:])
    same_pos = bool(torch.equal(plans["cpu"][:, 1], plans[device][:, 1]))
    negs = plans[device][:, 2:]
    gt_rows = chunk.tolist()
    valid = all(
        not np.isin(negs[i].numpy(), gt.non_negatives[row]).any() for i, row in enumerate(gt_rows)
    )
    committed = _committed_cpu_figure(Path(cfg["repo"]))
    figures: dict[str, Any] = {
        "mining_n_queries": len(q),
        "mining_n_database": size["n_db"],
        "mining_dim": size["dim"],
        "mining_chunk": size["chunk"],
        "mining_cpu_s": round(seconds["cpu"], 4),
        "mining_cpu_threads": torch.get_num_threads(),
        "mining_committed_cpu_s": committed,
    }
    if device != "cpu":
        figures["mining_device_s"] = round(seconds[device], 4)
        figures["mining_speedup_vs_cpu"] = round(seconds["cpu"] / seconds[device], 2)
        if committed:
            figures["mining_speedup_vs_committed_cpu"] = round(committed / seconds[device], 2)
    return {
        "figures": figures,
        "checks": [
            check(
                "mining_device_matches_cpu",
                same_pos and valid,
                f"positives {'equal' if same_pos else 'DIFFER'} on {device} and cpu; device "
                f"negatives {'all' if valid else 'NOT all'} beyond 25 m",
            )
        ],
    }


# -- demo comparison -------------------------------------------------------------------------
def _r1_by_method(records_dir: Path) -> dict[str, float]:
    """``{"netvlad [untrained]": R@1, "netvlad": R@1, ...}`` of the synthcity test records."""
    out: dict[str, float] = {}
    for path in sorted(records_dir.glob("synthcity/*/synthcity.test*.json")):
        record = json.loads(path.read_text())
        name = record["method"] + (
            " [untrained]" if record["checkpoint_tag"] == "untrained" else ""
        )
        out[name] = float(record["metrics"]["R@1"])
    return out


def stage_demo_compare(cfg: dict[str, Any]) -> Result:
    """The demo's R@1 per method against the CPU records (which ones: see the report)."""
    got = _r1_by_method(Path(cfg["demo_records"]))
    repo = Path(cfg["repo"])
    official = _r1_by_method(repo / "leaderboards" / "records")
    nofaiss_file = repo / "benchmarks" / "gpu" / "reference-nofaiss.json"
    nofaiss = json.loads(nofaiss_file.read_text())["r1"] if nofaiss_file.is_file() else {}
    use_nofaiss = not cfg.get("faiss_available", False) and bool(nofaiss)
    reference = nofaiss if use_nofaiss else official
    ref_name = (
        "CPU run without faiss (benchmarks/gpu/reference-nofaiss.json)"
        if use_nofaiss
        else ("committed CPU records (leaderboards/records/synthcity)")
    )
    tol = float(cfg["demo_tolerance"])
    checks = [check("demo_records", len(got) == 4, f"{len(got)} records: {', '.join(got)}")]
    rows = []
    for method, r1 in got.items():
        ref = reference.get(method)
        delta = None if ref is None or not cfg["demo_compare"] else r1 - ref
        rows.append(
            {
                "method": method,
                "r1": round(r1, 2),
                "reference_r1": ref,
                "official_cpu_r1": official.get(method),
                "delta": None if delta is None else round(delta, 2),
            }
        )
        if delta is None:
            why = "dry run on a reduced city: no reference" if not cfg["demo_compare"] else "none"
            checks.append(check(f"demo_r1 {method}", None, f"R@1 {r1:.1f}; reference: {why}"))
        else:
            checks.append(
                check(
                    f"demo_r1 {method}",
                    abs(delta) <= tol,
                    f"R@1 {r1:.1f} vs {ref:.1f} (Δ {delta:+.1f}, tolerance ±{tol:g})",
                )
            )
    return {"demo": {"reference": ref_name, "rows": rows}, "checks": checks}


STAGES: dict[str, Callable[[dict[str, Any]], Result]] = {
    "env": stage_env,
    "synthcity": stage_synthcity,
    "mining": stage_mining,
    "demo_compare": stage_demo_compare,
}


def main(argv: list[str]) -> int:
    """Run one stage; write its result JSON (also on failure, with the error)."""
    name, cfg_path, out_path = argv
    cfg = json.loads(Path(cfg_path).read_text())

    def save(result: Result) -> None:
        tmp = Path(out_path + ".tmp")
        tmp.write_text(json.dumps(result, indent=2, default=str))
        os.replace(tmp, out_path)

    if name == "sidebyside":
        from sidebyside import stage_sidebyside

        result = stage_sidebyside(cfg, lambda partial: save({**partial, "partial": True}))
    else:
        result = STAGES[name](cfg)
    save(result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
