#!/usr/bin/env python3
"""GPU proof (issue 16): install offline, run every CUDA path, measure speed side by side.

Usage (from the repository root; see benchmarks/README.md)::

    benchmarks/gpu/run.sh OUTDIR                 # a CUDA machine: the full proof, <= 8 min
    benchmarks/gpu/run.sh OUTDIR --device cpu    # dry mode: the same stages, tiny sizes (CI)

Every stage runs in its own process with its own time cap, inside one overall budget; a
failing or hanging stage is recorded and the next one runs. ``OUTDIR/gpu-report.json`` and
``OUTDIR/gpu-report.md`` are rewritten after every stage; ``OUTDIR/gpu-check.log`` holds the
output of every command. The exit code is 1 when any check failed, else 0.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from install import install
from report import write_report, write_summary
from runner import Job, Runner, run_stage

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

DEMO_TOLERANCE = 3.0
"""|ΔR@1| in points allowed between the demo on the device and the CPU reference (see README)."""

R1_TOLERANCE = 0.1
"""|ΔR@1| in points allowed between the OpenIBL-style fp32 loop and ours (the issue's 0.1),
pooled over the queries of synthcity small's test, val and train splits (2 100: one query is
0.05 points)."""

FULL: dict[str, Any] = {
    "synthcity_size": "small",
    "demo_sets": [],
    "demo_compare": True,
    "sidebyside": {
        "n_db": 10_000,
        "n_q": 6_816,
        "height": 480,
        "width": 640,
        "backbone": "vgg16",
        "clusters": 64,
        "pca_dim": 4096,
        "batch": 32,
        "workers": max(1, min(14, (os.cpu_count() or 2) - 2)),
        "precision": "bf16",
        "bank": 256,
        "chunk": 2048,
        "cap_openibl_s": 45.0,
        "cap_ours_s": 30.0,
        "model_only_repeats": 5,
        "init_images": 300,
        "init_iters": 100,
    },
    "mining": {
        "n_q": 7_416,
        "n_db": 10_000,
        "dim": 4096,
        "chunk": 1000,
        "neg_num": 10,
        "neg_pool": 1000,
    },
    # (stage, time cap in seconds); the overall budget bounds them further.
    "caps": {
        "env": 60,
        "install": 150,
        "gpu_tests": 200,
        "synthcity": 120,
        "sidebyside": 210,
        "mining": 90,
        "demo": 300,
        "demo_compare": 30,
    },
    "budget_s": 470,
    "reserve_after_demo_s": 200,
    "r1_tolerance": R1_TOLERANCE,
}

DRY: dict[str, Any] = {
    "synthcity_size": "tiny",
    # A shortened demo on the tiny city: one epoch, large steps, native size, no validation.
    "demo_sets": [
        "trainer.epochs=1",
        "trainer.tuples_per_step=32",
        "trainer.height=64",
        "trainer.width=85",
        "model.init_images=20",
        "trainer.cache_queries=300",
        "trainer.val_every=0",
    ],
    "demo_compare": False,
    "sidebyside": {
        "n_db": 48,
        "n_q": 24,
        "height": 64,
        "width": 80,
        "backbone": "tiny",
        "tiny_width": 4,
        "clusters": 8,
        "pca_dim": 16,
        "batch": 8,
        "workers": 0,
        "precision": "fp32",
        "bank": 6,
        "chunk": 32,
        "cap_openibl_s": 30.0,
        "cap_ours_s": 30.0,
        "model_only_repeats": 2,
        "init_images": 40,
        "init_iters": 20,
    },
    "mining": {"n_q": 300, "n_db": 400, "dim": 64, "chunk": 100, "neg_num": 5, "neg_pool": 50},
    "r1_tolerance": R1_TOLERANCE,
    "caps": {
        "env": 60,
        "install": 120,
        "gpu_tests": 120,
        "synthcity": 60,
        "sidebyside": 120,
        "mining": 60,
        "demo": 180,
        "demo_compare": 30,
    },
    "budget_s": 600,
    "reserve_after_demo_s": 60,
}


def _junit(paths: list[Path]) -> dict[str, Any]:
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    cases = []
    for path in paths:
        if not path.is_file():
            continue
        for suite in ET.parse(path).getroot().iter("testsuite"):
            for key in counts:
                counts[key] += int(suite.get(key, 0))
            for case in suite.iter("testcase"):
                outcome = "passed"
                for tag in ("failure", "error", "skipped"):
                    if case.find(tag) is not None:
                        outcome = tag
                cases.append(
                    {
                        "test": f"{case.get('classname')}::{case.get('name')}",
                        "outcome": outcome,
                        "seconds": float(case.get("time", 0)),
                    }
                )
    return {**counts, "cases": cases}


def _gpu_tests(runner: Runner, python: str, cfg: dict[str, Any]) -> dict[str, Any]:
    """``pytest -m gpu`` over tests/, plugins/ and the extraction benchmark (two sessions: the
    benchmark's module name clashes with tests/eval/test_extract.py)."""
    xmls = [runner.work / "junit-tests.xml", runner.work / "junit-bench.xml"]
    base = [python, "-m", "pytest", "-m", "gpu", "-p", "no:cacheprovider", "-q", "-rfEs"]
    if importlib.util.find_spec("pytest_timeout") is not None:
        base.append("--timeout=150")  # one hanging test fails alone, the others still report
    start = time.monotonic()
    codes = []
    for xml, paths in zip(
        xmls, (["tests", "plugins"], ["benchmarks/test_extract.py"]), strict=True
    ):
        xml.unlink(missing_ok=True)
        cap = cfg["caps"]["gpu_tests"] - (time.monotonic() - start)
        codes.append(
            runner.run(f"gpu_tests:{paths[0]}", [*base, f"--junitxml={xml}", *paths], cap)[0]
        )
    res = _junit(xmls)
    bad = res["failures"] + res["errors"]
    cuda = cfg["device"].startswith("cuda")
    ran = res["tests"] - res["skipped"]
    if any(code not in (0, 5) for code in codes) and not bad:
        ok: bool | None = False
        detail = f"pytest did not finish: exit codes {codes}"
    elif cuda:
        ok = bad == 0 and res["skipped"] == 0 and ran > 0
        detail = f"{ran} gpu tests ran: {ran - bad} passed, {bad} failed, {res['skipped']} skipped"
    else:
        ok = None if bad == 0 else False
        detail = f"{res['tests']} gpu tests collected; all skipped without CUDA (dry mode)"
    failed = [c["test"] for c in res["cases"] if c["outcome"] in ("failure", "error")]
    if failed:
        detail += "; failed: " + ", ".join(failed)
    status = "SKIP" if ok is None else ("PASS" if ok else "FAIL")
    return {"gpu_tests": res, "checks": [{"name": "gpu_tests", "status": status, "detail": detail}]}


def _start_demo(runner: Runner, python: str, cfg: dict[str, Any]) -> Job | None:
    """Start the quick demo (it runs beside the gpu-marked tests)."""
    demo = runner.work / "demo"
    shutil.rmtree(demo, ignore_errors=True)
    folder = cfg.get("synthcity_folder")
    if not folder:
        return None
    cmd = [python, "-m", "vpr_bench", "run", "--plugins", "netvlad,sare", "--dataset"]
    cmd += ["synthcity", "--profile", "quick", "--device", cfg["device"], "--data-root", folder]
    cmd += ["--train-root", folder, "--leaderboards", str(demo / "lb")]
    cmd += ["--runs-dir", str(demo / "runs")]
    for item in cfg["demo_sets"]:
        cmd += ["--set", item]
    # TF32 off (cuBLAS and cuDNN honour NVIDIA_TF32_OVERRIDE): the CPU references are float32,
    # and the trained R@1 is sensitive to small differences (see the README).
    tf32_off = {"NVIDIA_TF32_OVERRIDE": "0"}
    return runner.start("demo", cmd, cfg["caps"]["demo"], own_log=True, extra_env=tf32_off)


def _finish_demo(
    runner: Runner, job: Job | None, python: str, cfg: dict[str, Any], reserve_s: float
) -> dict[str, Any]:
    """Wait for the demo, leaving ``reserve_s`` of the budget to the stages after it."""
    if job is None:
        detail = "not started: " + (
            "no synthcity folder" if not cfg.get("synthcity_folder") else "out of time budget"
        )
        return {"checks": [{"name": "demo", "status": "FAIL", "detail": detail}]}
    code, seconds = runner.wait(job, runner.remaining() - reserve_s)
    result: dict[str, Any] = {"figures": {"demo_seconds": round(seconds, 1)}}
    if code != 0:
        status = runner.stages["demo"]["status"]
        result["checks"] = [{"name": "demo", "status": "FAIL", "detail": f"vpr-bench run {status}"}]
        return result
    records = str(runner.work / "demo" / "lb" / "records")
    compared = run_stage(runner, "demo_compare", dict(cfg, demo_records=records), python)
    return {**compared, "figures": {**result["figures"], **compared.get("figures", {})}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu (dry mode)")
    parser.add_argument("--python", default=sys.executable, help="interpreter of the stages")
    parser.add_argument(
        "--skip-install",
        action="store_true",
        help="use the importable vpr_bench instead of installing into a target",
    )
    parser.add_argument("--budget-s", type=float, help="overall time budget (default per mode)")
    parser.add_argument("--work", type=Path, help="scratch folder (default: a temporary one)")
    parser.add_argument("--skip", default="", help="comma-separated stages to skip (debugging)")
    args = parser.parse_args(argv)
    dry = not args.device.startswith("cuda")
    cfg: dict[str, Any] = json.loads(json.dumps(DRY if dry else FULL))
    out = args.outdir.resolve()
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu-check.log").unlink(missing_ok=True)
    work = (args.work or Path(tempfile.mkdtemp(prefix="vpr-gpu-check-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    cfg.update(
        device=args.device,
        repo=str(REPO),
        work=str(work),
        dry=dry,
        data_root=str(work / "synthcity"),
        demo_tolerance=DEMO_TOLERANCE,
        speedup_goal=6.0,
    )
    env = dict(
        os.environ,
        PYTHONUNBUFFERED="1",
        VPR_BENCH_CACHE=str(work / "cache"),
        PIP_NO_INDEX="1",
        MPLBACKEND="Agg",
    )
    runner = Runner(out, work, args.budget_s or cfg["budget_s"], env)
    skip = set(filter(None, args.skip.split(",")))
    state: dict[str, Any] = {
        "schema": 1,
        "mode": "dry" if dry else "gpu",
        "device": args.device,
        "started_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "command": " ".join(["benchmarks/gpu/run.sh", *(argv or sys.argv[1:])]),
        "tolerances": {
            "demo_r1_points": DEMO_TOLERANCE,
            "sidebyside_r1_points": cfg["r1_tolerance"],
            "e2e_speedup_goal": 6.0,
        },
        "sizes": {k: cfg[k] for k in ("synthcity_size", "sidebyside", "mining")},
        "env": {},
        "checks": [],
        "figures": {},
        "stages": runner.stages,
    }

    def merge(result: dict[str, Any]) -> None:
        state["checks"] += result.get("checks", [])
        state["figures"].update(result.get("figures", {}))
        for key in ("env", "gpu_tests", "demo"):
            if key in result:
                state[key] = result[key]
        write_report(out, state)

    merge(run_stage(runner, "env", cfg, args.python))
    cfg["faiss_gpus"] = state["env"].get("faiss_gpus", 0)
    cfg["faiss_available"] = bool(state["env"].get("faiss"))
    if args.skip_install or "install" in skip:
        merge({"checks": [{"name": "install", "status": "SKIP", "detail": "--skip-install"}]})
    else:
        checks, site = install(runner, args.python, cfg, state["env"].get("torch", ""))
        if site:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [site, env.get("PYTHONPATH")]))
        merge({"checks": checks})
    result = run_stage(runner, "synthcity", cfg, args.python)
    cfg["synthcity_folder"] = result.get("synthcity_folder", "")
    merge(result)
    # The demo (a tiny trunk: light on the GPU) runs beside the gpu-marked tests; the timed
    # stages (side by side, mining) run alone after it.
    demo = None if "demo" in skip else _start_demo(runner, args.python, cfg)
    if "gpu_tests" not in skip:
        merge(_gpu_tests(runner, args.python, cfg))
    if "demo" not in skip:
        merge(_finish_demo(runner, demo, args.python, cfg, cfg["reserve_after_demo_s"]))
    for name in ("sidebyside", "mining"):
        if name not in skip:
            merge(run_stage(runner, name, cfg, args.python))
    state["finished_utc"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    failed = [c for c in state["checks"] if c["status"] == "FAIL"]
    state["overall"] = "FAIL" if failed else "PASS"
    write_report(out, state)
    for xml in ("junit-tests.xml", "junit-bench.xml"):
        if (work / xml).is_file():
            shutil.copy2(work / xml, out / xml)
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    print(write_summary(state))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
