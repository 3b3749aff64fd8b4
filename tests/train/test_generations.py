"""The ``region-generations`` trainer: schedule, generation switches, plans, losses, resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from tests.train.synth import ToyRegionLoss, region_context
from vpr_bench.errors import ConfigError
from vpr_bench.train.generations import RegionGenerationsConfig, RegionGenerationsParadigm, fit
from vpr_bench.train.loop import Engine
from vpr_bench.train.state import load_train_state

GENERATIONS, EPOCHS = 3, 2  # run epochs: 1 + 2 * 2 = 5; 16 queries, 2 tuples a step: 8 a epoch


def _weights(run_dir: Path, name: str = "final") -> dict[str, torch.Tensor]:
    state, _ = load_train_state(run_dir / "checkpoints" / f"{name}.pt")
    return state["model"]


def _assert_identical(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, ToyRegionLoss]:
    """One uninterrupted run: 3 generations (1 + 2 + 2 epochs)."""
    root = tmp_path_factory.mktemp("strip")
    run_dir = root / "reference"
    loss = ToyRegionLoss()
    fit(region_context(root, run_dir, generations=GENERATIONS, epochs=EPOCHS, loss=loss))
    return root, run_dir, loss


def test_schedule_maps_run_epochs_to_generations(tmp_path: Path) -> None:
    ctx = region_context(tmp_path, tmp_path / "run", generations=4, epochs=5)
    engine = Engine(ctx, batch_rows=2)
    paradigm = RegionGenerationsParadigm(ctx, engine)
    assert paradigm.total_epochs() == 16  # OpenIBL: 1 + 3 x 5
    assert paradigm.position(0) == (0, 4)  # generation 0 is seeded as epoch E - 1
    assert [paradigm.position(e) for e in (1, 5, 6, 15)] == [(1, 0), (1, 4), (2, 0), (3, 4)]
    assert ctx.loss.checked == 4  # the loss was asked whether it covers 4 generations


def test_history_generations_and_loss_calls(reference) -> None:
    _, run_dir, loss = reference
    summary = json.loads((run_dir / "checkpoints" / "last.json").read_text())
    assert summary["epoch"] == 5
    state, _ = load_train_state(run_dir / "checkpoints" / "last.pt")
    history = state["loop"]["history"]
    assert [h["generation"] for h in history] == [0, 1, 1, 2, 2]
    assert [h["epoch"] for h in history] == [1, 2, 3, 4, 5]
    # 8 steps per epoch, one micro-batch each: 40 loss calls, generations as the epochs say.
    generations = [c["generation"] for c in loss.calls]
    assert generations == [0] * 8 + [1] * 16 + [2] * 16
    first = loss.calls[0]
    assert first["anchors"] == (2, 3, 16)  # [B, R, L]
    assert first["pairs"] == (2, 4, 3, 16)  # easiest positive + 3 negatives
    assert first["sim_diff"] == (2, 3, 3, 3)  # P = pos_num = 3, R x R
    assert not any(c["teacher_grad"] for c in loss.calls)


def test_generation_start_resets_student_and_optimiser(tmp_path: Path) -> None:
    ctx = region_context(tmp_path, tmp_path / "run", generations=2, epochs=1)
    engine = Engine(ctx, batch_rows=2)
    paradigm = RegionGenerationsParadigm(ctx, engine)
    initial = {k: v.clone() for k, v in engine.model.state_dict().items()}
    with torch.no_grad():
        for parameter in engine.model.parameters():
            parameter.add_(0.25)
    trained = {k: v.clone() for k, v in engine.model.state_dict().items()}
    old_optimizer = engine.optimizer
    paradigm.begin_epoch(engine, 0)  # generation 0: nothing changes
    _assert_identical(engine.model.state_dict(), trained)
    assert engine.optimizer is old_optimizer
    paradigm.begin_epoch(engine, 1)  # generation 1 starts
    _assert_identical(paradigm.teacher.state_dict(), trained)
    _assert_identical(engine.model.state_dict(), initial)
    assert engine.optimizer is not old_optimizer
    assert not any(p.requires_grad for p in paradigm.teacher.parameters())


def test_without_reinit_the_student_continues(tmp_path: Path) -> None:
    ctx = region_context(tmp_path, tmp_path / "run", generations=2, epochs=1, reinit_student=False)
    engine = Engine(ctx, batch_rows=2)
    paradigm = RegionGenerationsParadigm(ctx, engine)
    with torch.no_grad():
        for parameter in engine.model.parameters():
            parameter.add_(0.25)
    trained = {k: v.clone() for k, v in engine.model.state_dict().items()}
    paradigm.begin_epoch(engine, 1)
    _assert_identical(engine.model.state_dict(), trained)
    _assert_identical(paradigm.teacher.state_dict(), trained)


def test_plan_rows_hold_difficult_positives_of_the_query(tmp_path: Path) -> None:
    ctx = region_context(tmp_path, tmp_path / "run", generations=2, epochs=1)
    engine = Engine(ctx, batch_rows=2)
    paradigm = RegionGenerationsParadigm(ctx, engine)
    for epoch in (0, 1):  # generation 0 (plain distance) and 1 (Jaccard re-ranking)
        plan = paradigm.make_plan(engine, epoch, 0)
        assert plan.shape == (8, 2 + 3 + 3)
        for row in plan.tolist():
            query, positive, difficult = row[0], row[1], [d for d in row[5:] if d >= 0]
            allowed = set(paradigm.gt.positives[query].tolist())
            assert positive in allowed and set(difficult) <= allowed
            assert len(set(difficult)) == len(difficult)
            if epoch == 0:  # the pos_num nearest, nearest first: the first is the positive
                assert difficult[0] == positive and len(difficult) == 3


def test_config_check_refuses_contradictions() -> None:
    experiment = SimpleNamespace(loss=SimpleNamespace(temperatures=(0.07, 0.07)))
    with pytest.raises(ConfigError, match=r"trainer.pos_pool = 5 .* trainer.pos_num = 10"):
        RegionGenerationsConfig(pos_pool=5, pos_num=10).check(experiment)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"loss.temperatures has 2 entries .*generations = 4"):
        RegionGenerationsConfig().check(experiment)  # type: ignore[arg-type]
    RegionGenerationsConfig(generations=2).check(experiment)  # type: ignore[arg-type]


class _CrashError(RuntimeError):
    pass


@pytest.mark.parametrize(
    ("epoch", "step"),
    [(3, 28), (3, 24)],  # in generation 2 (mid-epoch); at the boundary of generations 1 and 2
    ids=["in-generation-2", "generation-boundary"],
)
def test_crash_then_resume_is_identical(reference, tmp_path: Path, epoch: int, step: int) -> None:
    root, ref_dir, _ = reference
    run_dir = tmp_path / "crashed"

    def crash(event) -> None:
        payload = event.payload
        if event.kind == "checkpoint-saved" and (payload.get("epoch"), payload["step"]) == (
            epoch,
            step,
        ):
            raise _CrashError("simulated crash")

    with pytest.raises(_CrashError):
        fit(region_context(root, run_dir, generations=GENERATIONS, epochs=EPOCHS, emit=crash))
    _, meta = load_train_state(run_dir / "checkpoints" / "last.pt")
    assert (meta["epoch"], meta["step"]) == (epoch, step)
    fit(region_context(root, run_dir, generations=GENERATIONS, epochs=EPOCHS, resume=True))
    _assert_identical(_weights(run_dir), _weights(ref_dir))


@pytest.mark.parametrize(
    ("epoch", "step"), [(3, 28), (3, 24)], ids=["in-generation-2", "generation-boundary"]
)
def test_sigkill_then_resume_is_identical(reference, tmp_path: Path, epoch: int, step: int) -> None:
    root, ref_dir, _ = reference
    run_dir = tmp_path / "killed"
    target = Path(__file__).with_name("_kill_target_generations.py")
    marker = tmp_path / "paused"
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    cmd = [sys.executable, str(target), str(root), str(run_dir), str(GENERATIONS), str(EPOCHS)]
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


def _ddp_worker(rank: int, root: str, run_dir: str, port: int) -> None:
    import torch.distributed as dist

    from vpr_bench.testing import set_rank_env

    set_rank_env(rank, 2, port)
    torch.set_num_threads(1)
    try:
        fit(region_context(Path(root), Path(run_dir), generations=2, epochs=1))
        dist.barrier()  # rank 0 hosts the store (see tests/train/test_distributed.py)
        if rank == 0:
            # ... and must outlive rank 1's teardown: under load a barrier alone still let
            # rank 1 abort ("terminate called without an active exception") in one CI run.
            import time

            time.sleep(2.0)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def test_two_gloo_processes_match_one_process(tmp_path: Path) -> None:
    """The same tuples on every rank, each rank its share: 2 processes follow 1 (both
    generations, the region forwards through DDP and the teacher on each rank)."""
    import torch.multiprocessing as mp

    from vpr_bench.testing import free_port

    single = tmp_path / "single"
    fit(region_context(tmp_path, single, generations=2, epochs=1))
    double = tmp_path / "ddp"
    mp.spawn(_ddp_worker, args=(str(tmp_path), str(double), free_port()), nprocs=2, join=True)
    expected, _ = load_train_state(single / "checkpoints" / "final.pt")
    got, meta = load_train_state(double / "checkpoints" / "final.pt")
    assert meta["step"] == 16  # 2 epochs x 16 queries / 2 tuples per global step
    for key, value in expected["model"].items():
        torch.testing.assert_close(got["model"][key], value, rtol=1e-4, atol=1e-5, msg=key)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.usefixtures("cuda_true_fp32")
def test_cuda_bf16_generations_follow_the_cpu_run(tmp_path: Path) -> None:
    """On CUDA with bf16 autocast (forwards in bf16; similarities and the loss in fp32) both
    generations train to finite weights, and the first fp32 plan equals the CPU plan."""
    cuda_dir, cpu_dir = tmp_path / "cuda", tmp_path / "cpu"
    loss = ToyRegionLoss()
    outcome = fit(
        region_context(
            tmp_path, cuda_dir, generations=2, epochs=1, device="cuda", amp=True, loss=loss
        )
    )
    assert outcome.final_checkpoint is not None
    assert all(torch.isfinite(v).all() for v in _weights(cuda_dir).values())
    assert [c["generation"] for c in loss.calls] == [0] * 8 + [1] * 8
    plans = []
    for device, run_dir in (("cuda", cuda_dir / "plan"), ("cpu", cpu_dir)):
        ctx = region_context(tmp_path, run_dir, generations=2, epochs=1, device=device)
        engine = Engine(ctx, batch_rows=2)
        plans.append(RegionGenerationsParadigm(ctx, engine).make_plan(engine, 1, 0))
    assert torch.equal(plans[0], plans[1])
