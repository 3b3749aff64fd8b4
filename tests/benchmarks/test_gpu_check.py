"""The GPU proof script in dry mode (``--device cpu``, tiny sizes), end to end, so it cannot rot.

It installs the harness and plugins offline into a scratch target, runs every stage on the CPU
and must write a complete report whose checks all pass (the gpu-marked tests are collected and
skipped without CUDA).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

FIGURES = (
    "model_only_images_per_s",
    "openibl_images_per_s",
    "ours_images_per_s",
    "extraction_speedup",
    "openibl_search_s",
    "ours_search_s",
    "openibl_e2e_s",
    "ours_e2e_s",
    "e2e_speedup",
    "e2e_goal",
    "openibl_peak_gpu_mib",
    "ours_peak_gpu_mib",
    "r1_openibl",
    "r1_ours",
    "r1_delta",
    "search_top1_agreement",
    "search_backends",
    "mining_cpu_s",
    "demo_seconds",
    "synthcity_seconds",
)

PASSING = (
    "cuda_available",
    "install",
    "synthcity_generated",
    "sidebyside_r1",
    "search_top1_agreement",
    "mining_device_matches_cpu",
    "demo_records",
)


def test_dry_run_writes_a_complete_passing_report(tmp_path: Path) -> None:
    out = tmp_path / "out"
    script = REPO / "benchmarks" / "gpu" / "gpu_check.py"
    proc = subprocess.run(
        [sys.executable, str(script), str(out), "--device", "cpu", "--work", str(tmp_path / "w")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    log = (out / "gpu-check.log").read_text() if (out / "gpu-check.log").is_file() else ""
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:] + log[-3000:]
    report = json.loads((out / "gpu-report.json").read_text())
    assert report["mode"] == "dry" and report["overall"] == "PASS"
    for key in ("device_name", "torch", "python", "cpu_count"):
        assert report["env"].get(key), key
    assert {"started_utc", "finished_utc", "tolerances", "sizes"} <= report.keys()
    assert all(stage["status"] == "ok" for stage in report["stages"].values()), report["stages"]
    status = {check["name"]: check["status"] for check in report["checks"]}
    assert all(s in ("PASS", "SKIP") for s in status.values()), status
    for name in PASSING:
        assert status.get(name) == "PASS", (name, status)
    assert status["gpu_tests"] == "SKIP" and report["gpu_tests"]["tests"] >= 8
    assert sum(name.startswith("demo_r1 ") for name in status) == 4
    missing = [key for key in FIGURES if key not in report["figures"]]
    assert not missing, missing
    markdown = (out / "gpu-report.md").read_text()
    for heading in ("# GPU proof", "## Environment", "## Checks", "## Figures", "## Stages"):
        assert heading in markdown
    assert "Overall: **PASS**" in markdown
    assert "PASS  install" in proc.stdout  # the summary table ends stdout
