"""Crash-and-resume: a killed run resumed from its last checkpoint ends bit-identical."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.train.synth import tiny_context
from vpr_bench.train.state import load_train_state
from vpr_bench.train.tuples import fit

EPOCHS = 2


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    state, _ = load_train_state(run_dir / "checkpoints" / "final.pt")
    return state["model"]


def _assert_identical(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, torch.Tensor]]:
    root = tmp_path_factory.mktemp("strip")
    run_dir = root / "reference"
    outcome = fit(tiny_context(root, run_dir, epochs=EPOCHS))
    assert outcome.final_checkpoint is not None
    return root, _weights(run_dir)


class _CrashError(RuntimeError):
    pass


def test_exception_mid_epoch_then_resume_is_identical(reference, tmp_path: Path) -> None:
    root, expected = reference
    run_dir = tmp_path / "crashed"
    saves = []

    def crash_after_second_checkpoint(event) -> None:
        if event.kind == "checkpoint-saved":
            saves.append(event.payload["step"])
            if len(saves) == 2:
                raise _CrashError("simulated crash")

    with pytest.raises(_CrashError):
        fit(tiny_context(root, run_dir, epochs=EPOCHS, emit=crash_after_second_checkpoint))
    _, meta = load_train_state(run_dir / "checkpoints" / "last.pt")
    assert meta["step"] == 4 and meta["epoch"] == 0  # mid-epoch: 8 steps per epoch
    fit(tiny_context(root, run_dir, epochs=EPOCHS, resume=True))
    _assert_identical(_weights(run_dir), expected)


def test_sigkill_then_resume_is_identical(reference, tmp_path: Path) -> None:
    root, expected = reference
    run_dir = tmp_path / "killed"
    target = Path(__file__).with_name("_kill_target.py")
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    cmd = [sys.executable, str(target), str(root), str(run_dir), str(EPOCHS)]
    proc = subprocess.Popen(cmd, env=env)
    sidecar = run_dir / "checkpoints" / "last.json"
    deadline = time.monotonic() + 40
    while not sidecar.exists():
        assert proc.poll() is None, "the training subprocess ended before its first checkpoint"
        assert time.monotonic() < deadline, "no checkpoint within 40 s"
        time.sleep(0.005)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    meta = json.loads(sidecar.read_text())
    assert meta["epoch"] < EPOCHS and not (run_dir / "checkpoints" / "final.pt").exists()
    resumed = subprocess.run([*cmd, "resume"], env=env, check=False, timeout=60)
    assert resumed.returncode == 0
    _assert_identical(_weights(run_dir), expected)


def test_resume_without_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    from vpr_bench.errors import DataError

    with pytest.raises(DataError, match="No checkpoint at .*last.pt"):
        fit(tiny_context(tmp_path, tmp_path / "empty", epochs=1, resume=True))
