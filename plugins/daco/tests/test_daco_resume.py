"""SIGKILL mid-epoch, then ``--resume``: bit-identical to an uninterrupted run (daco, moco, npid).

About 25 s each on 2 CPU cores: daco runs by default, moco and npid with ``-m slow``. The
killed run's final weights and its last checkpoint's trainer state (MoCo's queue and key
encoder, NPID's bank and z) must equal the uninterrupted run's exactly, on the CPU.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from vpr_bench.testing import prepare_synthcity
from vpr_bench.weights import safe_load

TARGET = Path(__file__).with_name("_kill_target.py")


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepare_synthcity(tmp_path_factory.mktemp("data"), "tiny", seed=0, progress=False)


def _state(run_dir: Path, name: str) -> dict[str, torch.Tensor]:
    payload = safe_load(run_dir / "checkpoints" / f"{name}.pt")
    assert isinstance(payload, dict)
    if name == "final":
        return dict(payload["model"])
    return {f"paradigm.{k}": v for k, v in payload["paradigm"].items()}


def _run(args: list[str]) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, str(TARGET), *args], env=env)


@pytest.mark.parametrize(
    ("method", "step"),
    [
        ("daco", 4),
        pytest.param("moco", 4, marks=pytest.mark.slow),
        pytest.param("npid", 3, marks=pytest.mark.slow),
    ],
)
def test_sigkill_then_resume_is_identical(
    city: Path, tmp_path: Path, method: str, step: int
) -> None:
    reference = _run([str(city), str(tmp_path / "ref"), method, "9:9:never"])
    assert reference.wait(timeout=240) == 0
    (ref_dir,) = (tmp_path / "ref" / method).iterdir()
    marker = tmp_path / "paused"
    killed = _run([str(city), str(tmp_path / "killed"), method, f"0:{step}:{marker}"])
    deadline = time.monotonic() + 240
    while not marker.exists():
        assert killed.poll() is None, "the training subprocess ended before the kill point"
        assert time.monotonic() < deadline, "the kill point was not reached"
        time.sleep(0.02)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    (run_dir,) = (tmp_path / "killed" / method).iterdir()
    assert not (run_dir / "checkpoints" / "final.pt").exists()
    resumed = _run([str(city), str(tmp_path / "killed"), method, f"resume:{run_dir}"])
    assert resumed.wait(timeout=240) == 0
    for name in ("final", "last"):
        ours, theirs = _state(run_dir, name), _state(ref_dir, name)
        assert ours.keys() == theirs.keys()
        for key in ours:
            assert torch.equal(ours[key], theirs[key]), f"{name}: {key}"
    if method == "moco":
        assert any(k.startswith("paradigm.key.") for k in _state(run_dir, "last"))
        assert "paradigm.loss.queue" in _state(run_dir, "last")
