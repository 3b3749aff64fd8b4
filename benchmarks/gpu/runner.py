"""Stage runner of the GPU proof: each stage a subprocess with its own cap inside one budget.

A :class:`Runner` runs commands from the repository root, appends their output to
``OUTDIR/gpu-check.log``, records each stage's status and seconds, and stops a command at its
cap or when the overall budget is spent; :func:`run_stage` runs one ``stages.py`` stage.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


@dataclass
class Job:
    """A started stage command."""

    name: str
    proc: subprocess.Popen[bytes]
    started: float
    timeout: float
    own_log: IO[str] | None


class Runner:
    """Runs stage commands with time caps inside one budget, logging to ``gpu-check.log``."""

    def __init__(self, out: Path, work: Path, budget_s: float, env: dict[str, str]) -> None:
        self.out, self.work = out, work
        self.deadline = time.monotonic() + budget_s
        self.env = env
        self.log = (out / "gpu-check.log").open("a", encoding="utf-8")
        self.stages: dict[str, dict[str, Any]] = {}

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def start(
        self,
        name: str,
        cmd: list[str],
        cap: float,
        own_log: bool = False,
        extra_env: dict[str, str] | None = None,
    ) -> Job | None:
        """Start ``cmd`` (None when the budget has no time left); ``own_log`` writes its output
        to a file of its own (for a stage that runs beside others), appended to the log later."""
        timeout = min(cap, self.remaining())
        if timeout < 5:
            self.stages[name] = {"status": "not run (out of time budget)", "seconds": 0.0}
            return None
        self.log.write(f"\n===== {name}: {' '.join(cmd)} (cap {timeout:.0f} s)\n")
        self.log.flush()
        log_file = (self.work / f"{name}.log").open("w") if own_log else self.log
        proc = subprocess.Popen(
            cmd,
            cwd=REPO,
            env=dict(self.env, **(extra_env or {})),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        return Job(name, proc, time.monotonic(), timeout, log_file if own_log else None)

    def wait(self, job: Job | None, cap: float | None = None) -> tuple[int | None, float]:
        """Wait for ``job`` up to its cap (or the smaller ``cap`` from now); kill it after."""
        if job is None:
            return None, 0.0
        left = job.started + job.timeout - time.monotonic()
        if cap is not None:
            left = min(left, cap)
        try:
            code: int | None = job.proc.wait(timeout=max(0.1, left))
        except subprocess.TimeoutExpired:
            os.killpg(job.proc.pid, signal.SIGKILL)  # the stage and its workers
            job.proc.wait()
            code = None
        seconds = time.monotonic() - job.started
        status = "timed out" if code is None else ("ok" if code == 0 else f"exit {code}")
        self.stages[job.name] = {
            "status": status,
            "seconds": round(seconds, 1),
            "cap_s": round(job.timeout),
        }
        if job.own_log is not None:
            job.own_log.close()
            self.log.write((self.work / f"{job.name}.log").read_text(errors="replace"))
        self.log.write(f"===== {job.name}: {status} after {seconds:.1f} s\n")
        self.log.flush()
        print(f"[gpu-check] {job.name}: {status} after {seconds:.0f} s", flush=True)
        return code, seconds

    def run(self, name: str, cmd: list[str], cap: float) -> tuple[int | None, float]:
        """Run ``cmd``; returns (exit code or None on timeout/no time, seconds)."""
        return self.wait(self.start(name, cmd, cap))


def run_stage(runner: Runner, name: str, cfg: dict[str, Any], python: str) -> dict[str, Any]:
    """Run a Python stage of stages.py; its result, or a FAIL check saying what went wrong."""
    cfg_path, out_path = runner.work / f"{name}.cfg.json", runner.work / f"{name}.result.json"
    cfg_path.write_text(json.dumps(cfg, default=str))
    out_path.unlink(missing_ok=True)
    code, _ = runner.run(
        name,
        [python, str(HERE / "stages.py"), name, str(cfg_path), str(out_path)],
        cfg["caps"][name],
    )
    # A stage saves partial results as it goes: keep them when it fails or hangs later.
    result: dict[str, Any] = json.loads(out_path.read_text()) if out_path.is_file() else {}
    if code != 0 or result.get("partial"):
        status = runner.stages[name]["status"]
        detail = f"stage {status}; see gpu-check.log"
        result.setdefault("checks", []).append({"name": name, "status": "FAIL", "detail": detail})
    return result
