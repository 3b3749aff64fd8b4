"""Writes ``gpu-report.json`` and ``gpu-report.md`` (rewritten after every stage)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

MEANINGS: dict[str, str] = {
    "model_only_images_per_s": "images/s of the model alone on a batch already on the device "
    "(no loading): fp32 contiguous (openibl) vs bf16 autocast + channels_last (ours)",
    "openibl_images_per_s": "extraction images/s of the OpenIBL-style loop: JPEG decode "
    "(DataLoader, not pinned), fp32 model, PCA-w per batch on the device, features to the host",
    "ours_images_per_s": "extraction images/s of the harness path (pinned loader, channels_last, "
    "bf16 autocast) including its PCA-w on the device",
    "extraction_speedup": "ours_images_per_s / openibl_images_per_s",
    "extraction_extrapolated": "true when a pipeline hit its time cap: its full-scale time is "
    "extrapolated from the images it measured (openibl/ours_images_measured)",
    "openibl_search_s": "dense float32 distances on the CPU + full np.argsort of every row, "
    "full scale (queries x database x PCA dim), random unit descriptors",
    "ours_search_s": "harness knn (chunked matmul + top-k, k = 20) on the device, same data",
    "search_backends": "the GPU search paths measured (faiss only when faiss-gpu is installed)",
    "search_faiss_gpu_s": "harness knn through faiss on the GPU (only when faiss-gpu is there)",
    "openibl_e2e_s": "full-scale extraction (+PCA) + search of the OpenIBL-style loop",
    "ours_e2e_s": "full-scale extraction (+PCA) + search of ours",
    "e2e_speedup": "openibl_e2e_s / ours_e2e_s (the issue's goal: >= 6x)",
    "openibl_peak_gpu_mib": "peak allocated GPU memory of the OpenIBL-style extraction",
    "ours_peak_gpu_mib": "peak allocated GPU memory of our extraction + PCA + search",
    "search_top1_agreement": "fraction of queries whose nearest neighbour is the same in both",
    "r1_openibl": "R@1 (%) of the OpenIBL-style pipeline on synthcity test (same random model)",
    "r1_ours": "R@1 (%) of ours on the same split",
    "r1_delta": "r1_ours - r1_openibl, in points (one query is 100/r1_queries points)",
    "r1_top1_changed": "queries whose top-1 database image differs between the two pipelines",
    "mining_cpu_s": "one mining refresh (TupleMiner, one chunk) on the CPU, this machine",
    "mining_device_s": "the same refresh on the device (descriptors already there)",
    "mining_speedup_vs_cpu": "mining_cpu_s / mining_device_s",
    "mining_committed_cpu_s": "the committed CPU figure (benchmarks/results/mining-cpu.md, 2 "
    "threads)",
    "demo_seconds": "wall time of the quick demo (vpr-bench run, 3 trainings + 4 evaluations)",
    "synthcity_seconds": "generating the synthetic city",
}

ENV_KEYS = (
    "device_name",
    "driver",
    "capability",
    "device_memory_gib",
    "torch",
    "torch_cuda",
    "cudnn",
    "nccl",
    "python",
    "numpy",
    "faiss",
    "faiss_gpus",
    "cpu_count",
    "cudnn_allow_tf32",
    "git_sha",
    "platform",
)


def _atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _fmt(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {_fmt(v)}" for k, v in value.items())
    return "—" if value is None or value == "" else str(value)


def _markdown(state: dict[str, Any]) -> str:
    env = state.get("env", {})
    title = env.get("device_name", state["device"])
    lines = [
        f"# GPU proof: {title}",
        "",
        f"Mode **{state['mode']}** (`{state['command']}`), started {state['started_utc']}"
        + (f", finished {state['finished_utc']}" if "finished_utc" in state else " (running)")
        + f". Overall: **{state.get('overall', 'incomplete')}**.",
        "",
        "## Environment",
        "",
        "| key | value |",
        "|---|---|",
        *[f"| {k} | {_fmt(env.get(k))} |" for k in ENV_KEYS if k in env],
        "",
        "## Checks",
        "",
        "| check | status | detail |",
        "|---|---|---|",
        *[f"| {c['name']} | {c['status']} | {c['detail']} |" for c in state["checks"]],
        "",
        "## Figures",
        "",
        "| figure | value | meaning |",
        "|---|---|---|",
        *[f"| {k} | {_fmt(v)} | {MEANINGS.get(k, '')} |" for k, v in state["figures"].items()],
        "",
    ]
    demo = state.get("demo")
    if demo:
        lines += [
            "## Quick demo on the device",
            "",
            f"Reference: {demo['reference']}. Tolerance ±{state['tolerances']['demo_r1_points']} "
            "R@1 points per method.",
            "",
            "| method | R@1 here | reference | Δ | official CPU record |",
            "|---|---|---|---|---|",
            *[
                f"| {r['method']} | {r['r1']} | {_fmt(r['reference_r1'])} | {_fmt(r['delta'])} "
                f"| {_fmt(r['official_cpu_r1'])} |"
                for r in demo["rows"]
            ],
            "",
        ]
    tests = state.get("gpu_tests")
    if tests and tests.get("cases"):
        lines += ["## gpu-marked tests", "", "| test | outcome | s |", "|---|---|---|"]
        lines += [f"| {c['test']} | {c['outcome']} | {c['seconds']:.2f} |" for c in tests["cases"]]
        lines.append("")
    lines += [
        "## Stages",
        "",
        "| stage | status | seconds | cap |",
        "|---|---|---|---|",
        *[
            f"| {name} | {s['status']} | {s['seconds']} | {_fmt(s.get('cap_s'))} |"
            for name, s in state["stages"].items()
        ],
        "",
        "## What is measured",
        "",
        "Side by side: both pipelines run in the same process on the same random-weight model "
        "and the same JPEG files (a bank of distinct images read cyclically; decode included), "
        "with the same batch size and DataLoader workers, each after a warm-up. Extraction "
        "runs over the full image count unless a pipeline hits its time cap; then its "
        "full-scale time is extrapolated from its measured images/s "
        f"(extrapolated: {_fmt(state['figures'].get('extraction_extrapolated'))}). Search "
        "runs at full scale on seeded random unit descriptors (medians of repeated runs; the "
        "OpenIBL-style CPU search once on the full-size run). PCA-w for the speed part is a "
        "random projection of the right shape (fitting excluded); for the R@1 comparison each "
        "pipeline fits its own PCA-w on synthcity train. Mining: one chunk of 1 000 queries, "
        "median of 3 after a warm-up, descriptors already on the device.",
        "",
    ]
    return "\n".join(lines)


def write_report(out: Path, state: dict[str, Any]) -> None:
    """Rewrite ``gpu-report.json`` and ``gpu-report.md`` in ``out``."""
    _atomic(out / "gpu-report.json", json.dumps(state, indent=2, default=str) + "\n")
    _atomic(out / "gpu-report.md", _markdown(state))


def write_summary(state: dict[str, Any]) -> str:
    """The short table printed at the end of stdout."""
    fig = state["figures"]
    keys = (
        "openibl_images_per_s",
        "ours_images_per_s",
        "openibl_search_s",
        "ours_search_s",
        "openibl_e2e_s",
        "ours_e2e_s",
        "e2e_speedup",
        "e2e_goal",
        "openibl_peak_gpu_mib",
        "ours_peak_gpu_mib",
        "r1_delta",
        "mining_cpu_s",
        "mining_device_s",
        "demo_seconds",
    )
    rows = [f"{c['status']:5} {c['name']}: {c['detail']}" for c in state["checks"]]
    rows += [f"      {k} = {_fmt(fig[k])}" for k in keys if k in fig]
    rows += [f"      stage {n}: {s['status']} {s['seconds']} s" for n, s in state["stages"].items()]
    env = state.get("env", {})
    head = (
        f"GPU proof ({state['mode']}) on {env.get('device_name', state['device'])}, torch "
        f"{env.get('torch', '?')}: {state.get('overall', 'incomplete')}"
    )
    return "\n".join([head, *rows])
