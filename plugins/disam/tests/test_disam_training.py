"""The disam-gan trainer: a tiny run, its schedule, bad inputs, and SIGKILL + resume = identical."""

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
from _disam_train_setup import DOMAINS, context, make_images

from vpr_bench.errors import ConfigError, UsageError
from vpr_bench.train import load_train_state
from vpr_bench_disam.trainer import DisamGanConfig, ImagePool, fit, lr_at, ramp_at


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """An uninterrupted run (2 epochs of 4 steps)."""
    root = tmp_path_factory.mktemp("disam-data")
    run_dir = tmp_path_factory.mktemp("disam-ref") / "run"
    outcome = fit(context(root, run_dir))
    assert outcome.final_checkpoint == run_dir / "checkpoints" / "final.pt"
    return root, run_dir


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    state, _ = load_train_state(run_dir / "checkpoints" / "final.pt")
    return state["model"]


def _assert_identical(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_the_run_trains_every_network_and_follows_the_schedule(reference) -> None:
    root, run_dir = reference
    state, meta = load_train_state(run_dir / "checkpoints" / "last.pt")
    history = state["loop"]["history"]
    assert [h["epoch"] for h in history] == [1, 2]
    # a fresh run's epoch 1 uses the full weights; after epoch 1 (= niter) the lr stays, the
    # ramp is 1/2; after epoch 2 the lr has decayed to 0 and the ramp is 1
    assert [(h["lr"], h["ramp"]) for h in history] == [(2e-4, 1.0), (2e-4, 0.5)]
    assert state["loop"]["lr"] == 0.0 and state["loop"]["ramp"] == 1.0
    assert all(h["sam_a"] >= 0 and h["loss_d"] > 0 for h in history)
    start = context(root, run_dir.parent / "unused").model.state_dict()
    trained = _weights(run_dir)
    changed = {k.split(".")[1] for k in trained if not torch.equal(trained[k], start[k])}
    assert changed == {"0", "1", "2"}  # every domain's encoder was trained
    assert meta["step"] == 8 and len(state["pools"]) == 3


@pytest.mark.parametrize(("epoch", "step"), [(1, 2), pytest.param(2, 4, marks=pytest.mark.slow)])
def test_sigkill_then_resume_is_identical(reference, tmp_path: Path, epoch: int, step: int) -> None:
    root, ref_dir = reference
    run_dir = tmp_path / "killed"
    target = Path(__file__).with_name("_kill_target_disam.py")
    marker = tmp_path / "paused"
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    cmd = [sys.executable, str(target), str(root), str(run_dir)]
    proc = subprocess.Popen([*cmd, f"{epoch}:{step}:{marker}"], env=env)
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert proc.poll() is None, "the training subprocess ended before the kill point"
        assert time.monotonic() < deadline, "the kill point was not reached within 120 s"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    meta = json.loads((run_dir / "checkpoints" / "last.json").read_text())
    assert (meta["epoch"], meta["step"]) == (epoch, step)
    assert not (run_dir / "checkpoints" / "final.pt").exists()
    resumed = subprocess.run([*cmd, "resume"], env=env, check=False, timeout=180)
    assert resumed.returncode == 0
    _assert_identical(_weights(run_dir), _weights(ref_dir))


def test_schedule_functions() -> None:
    cfg = DisamGanConfig(niter=300, niter_decay=900)
    assert lr_at(cfg, 300, 2e-4) == 2e-4
    assert lr_at(cfg, 750, 2e-4) == pytest.approx(1e-4)
    assert lr_at(cfg, 1200, 2e-4) == 0.0
    assert ramp_at(cfg, 300) == 0.25 and ramp_at(cfg, 1200) == 1.0


def test_image_pool() -> None:
    pool = ImagePool(2)
    generator = torch.Generator().manual_seed(0)
    images = [torch.full((1, 1, 1, 1), float(i)) for i in range(40)]
    out = [float(pool.query(x, generator)) for x in images]
    assert out[:2] == [0.0, 1.0]  # filling: the new image comes back
    swapped = [i for i, v in enumerate(out) if v != i]
    assert 8 < len(swapped) < 32  # about half of the later queries return a stored image
    assert all(out[i] < i for i in swapped)
    kept = pool.state()
    again = ImagePool(2)
    again.load(kept)
    assert torch.equal(again.state(), kept)
    assert ImagePool(0).query(images[3], generator) is not None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"crop_size": 18, "load_size": 20}, "not divisible by 4"),
        ({"crop_size": 16, "load_size": 12}, "smaller than trainer.crop_size"),
        ({"niter": 0, "niter_decay": 0}, "at least 1 epoch"),
        ({"init_epoch": 2}, "leaves no epoch"),
    ],
)
def test_bad_trainer_options(options: dict, message: str) -> None:
    base = {"niter": 1, "niter_decay": 1, "crop_size": 16, "load_size": 18}
    with pytest.raises(ConfigError, match=message):
        DisamGanConfig(**{**base, **options})


def test_bad_inputs_before_any_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = context(tmp_path / "data", tmp_path / "run", require_init=True)
    with pytest.raises(ConfigError, match="trainer.init_from"):
        fit(ctx)
    split = make_images(tmp_path / "data")
    two = type(split)(
        name="toy-two",
        database=tuple(r for r in split.database if r.domain != "c"),
        queries=(),
    )
    ctx = context(tmp_path / "data", tmp_path / "run2")
    ctx.train_split = two
    with pytest.raises(ConfigError, match=r"has 2 domains \(a, b\) but the DISAM model has 3"):
        fit(ctx)
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(UsageError, match="without torchrun"):
        fit(context(tmp_path / "data", tmp_path / "run3"))
    assert not (tmp_path / "run" / "checkpoints" / "last.pt").exists()
    assert DOMAINS == ("a", "b", "c")


def test_c2f_reuses_the_latest_coarse_and_fine_runs(tmp_path: Path) -> None:
    from vpr_bench.train import save_train_state
    from vpr_bench_disam.config import DisamC2FConfig, DisamConfig
    from vpr_bench_disam.model import build_disam, build_disam_c2f

    shape = {"n_domains": 3, "domains": DOMAINS, "ngf": 2, "netg_blocks": 2, "image_size": 16}
    runs = tmp_path / "runs"
    ctx = context(tmp_path / "data", runs / "disam" / "20260101T000000Z")
    ctx.model = build_disam_c2f(DisamC2FConfig(**shape))
    with pytest.raises(ConfigError, match="reuses the weights of a finished disam-coarse run"):
        fit(ctx)
    saved = {}
    for method, seed in (("disam-coarse", 11), ("disam-fine", 12)):
        for stamp, offset in (("20250101T000000Z", 100), ("20260101T000000Z", 0)):
            weights = build_disam(DisamConfig(**shape, seed=seed + offset)).state_dict()
            folder = runs / method / stamp / "checkpoints"
            folder.mkdir(parents=True)
            save_train_state(folder / "final.pt", {"model": weights}, {"kind": "weights"})
            saved[method] = weights  # the later stamp is written last
    outcome = fit(ctx)
    state, _ = load_train_state(outcome.final_checkpoint)
    for part, method in (("coarse", "disam-coarse"), ("fine", "disam-fine")):
        for key, value in saved[method].items():
            assert torch.equal(state["model"][f"{part}.{key}"], value), (part, key)
    ctx.model = build_disam_c2f(DisamC2FConfig(**{**shape, "ngf": 4}))
    with pytest.raises(ConfigError, match="does not fit the coarse-to-fine model's coarse part"):
        fit(ctx)
