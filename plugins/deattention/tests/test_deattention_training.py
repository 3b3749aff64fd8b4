"""The ``deattention-mining`` trainer: violation filter, loss terms, refusals, exact resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from vpr_bench import resolve_experiment
from vpr_bench.errors import ConfigError, DataError
from vpr_bench.testing import isolated_manager, prepare_synthcity
from vpr_bench.train import Engine, TrainContext, load_training_data, train_method
from vpr_bench_deattention.teachers import SynthCityTeacher, mask_target
from vpr_bench_deattention.trainer import DeAttentionParadigm, violation_filter

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _kill_target import PLUGINS, SETS, train  # noqa: E402


def test_violation_filter_by_hand() -> None:
    q = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    db = torch.tensor([[1.0, 0.0], [0.0, 0.5], [0.0, 1.05], [3.0, 0.0], [0.0, 1.2]])
    plan = torch.tensor([[0, 0, 1, 2, 3], [1, 0, 3, 4, -1]])
    # query 0: d_pos 1; negatives at 0.5 (kept), 1.05 (kept, < 1.1), 3 (dropped).
    # query 1: d_pos 1; negatives at 3 and 1.2, both >= 1.1: the query is skipped.
    out = violation_filter(plan, q, db, 0.1)
    assert out.tolist() == [[0, 0, 1, 2, -1]]
    assert violation_filter(plan, q, db, 1.5).tolist() == [[0, 0, 1, 2, -1], [1, 0, 4, -1, -1]]


def _method_config(sets: tuple[str, ...] = ()) -> tuple[Any, Any, Any]:
    registries = isolated_manager(PLUGINS).registries()
    method = registries.methods.get("deattention")
    config = resolve_experiment(method, registries, profile="quick", sets=(*SETS, *sets))
    return registries, method, config


def test_step_loss_is_ranking_plus_weighted_mask_mse(labelled_city: Path, tmp_path: Path) -> None:
    registries, method, config = _method_config()
    data = load_training_data(
        method, registries, config, dataset_name="synthcity", data_root=labelled_city
    )
    model = resolve_model(registries, method, config)
    ctx = TrainContext(
        model=model,
        loss=registries_loss(registries, method, config),
        config=config.trainer,
        train_split=data.train_split,
        preprocess=registries.models.get(method.model).preprocess,
        run_dir=tmp_path,
        seed=config.seed,
    )
    engine = Engine(ctx, batch_rows=4)
    teacher = SynthCityTeacher(config.model.deatt_categories)
    paradigm = DeAttentionParadigm(ctx, engine, teacher)
    plan = paradigm.make_plan(engine, 0, 0)
    rows = plan[:2]
    model.train()
    torch.manual_seed(0)
    loss = paradigm.loss(engine, rows)
    # Re-computation: one forward over the step's images, sTML mean, w * MSE vs M_gt.
    ids = [int(rows[r, 0]) for r in range(2)]
    flat: list[int] = []
    for r in range(2):
        flat += [int(rows[r, 0]), int(rows[r, 1]) + paradigm.n_q]
        flat += [int(n) + paradigm.n_q for n in rows[r, 2:] if n >= 0]
    desc = model(paradigm.images.batch(flat))
    mask = model.last_mask
    start, ranking, pairs = 0, torch.zeros(()), 0
    for r in range(2):
        k = int((rows[r, 2:] >= 0).sum())
        block = desc[start : start + 2 + k]
        ranking = ranking + ctx.loss(block[0:1], block[1:2][None], block[2:][None]) * k
        pairs, start = pairs + k, start + 2 + k
    size = (int(mask.shape[2]), int(mask.shape[3]))
    targets = torch.stack(
        [mask_target(teacher.keep(paradigm.images.paths[i], None), size) for i in flat]
    )
    expected = ranking / pairs + 0.1 * F.mse_loss(mask, targets)
    assert ids and paradigm.last_terms["mask"] > 0
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-7)
    cached = sorted((tmp_path / "mask-cache").glob("*.npy"))
    assert len(cached) == len(set(flat))


def resolve_model(registries: Any, method: Any, config: Any) -> Any:
    from vpr_bench import resolve

    return resolve(registries.models.get(method.model).build)(config.model)


def registries_loss(registries: Any, method: Any, config: Any) -> Any:
    from vpr_bench import resolve

    return resolve(registries.losses.get(method.loss).build)(config.loss)


def test_no_teacher_refuses_in_one_line_and_writes_nothing(
    labelled_city: Path, tmp_path: Path
) -> None:
    registries, method, config = _method_config(("trainer.teacher=",))
    data = load_training_data(
        method, registries, config, dataset_name="synthcity", data_root=labelled_city
    )
    runs = tmp_path / "runs"
    with pytest.raises(ConfigError) as info:
        train_method(method, registries, config, data, runs_dir=runs)
    message = str(info.value)
    assert "\n" not in message and "synthcity" in message and "vainf-deeplabv3plus" in message
    assert not runs.exists()


def test_missing_labels_refuse_in_one_line_and_write_nothing(tmp_path: Path) -> None:
    city = prepare_synthcity(tmp_path / "plain", "tiny", seed=0, progress=False)
    registries, method, config = _method_config()
    data = load_training_data(method, registries, config, dataset_name="synthcity", data_root=city)
    runs = tmp_path / "runs"
    with pytest.raises(DataError, match="data prepare synthcity --labels --size tiny"):
        train_method(method, registries, config, data, runs_dir=runs)
    assert not runs.exists()


def _final(run_dir: Path) -> dict[str, torch.Tensor]:
    from vpr_bench.weights import safe_load

    payload = safe_load(run_dir / "checkpoints" / "final.pt")
    assert isinstance(payload, dict)
    return payload["model"]  # type: ignore[no-any-return]


def _cache(run_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (run_dir / "mask-cache").glob("*.npy")}


def test_sigkill_then_resume_is_identical_mask_cache_included(
    labelled_city: Path, tmp_path: Path
) -> None:
    reference: Any = train(labelled_city, tmp_path / "reference")
    assert [h["epoch"] for h in reference.history] == [1, 2]
    runs, marker = tmp_path / "killed", tmp_path / "paused"
    threads = str(torch.get_num_threads())  # the reference's, so the kernels sum alike
    env = {**os.environ, "PYTHONHASHSEED": "0", "VPR_BENCH_TEST_THREADS": threads}
    cmd = [sys.executable, str(HERE / "_kill_target.py"), str(labelled_city)]
    proc = subprocess.Popen([*cmd, str(runs), f"12:{marker}"], env=env)
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert proc.poll() is None, "the training subprocess ended before the kill point"
        assert time.monotonic() < deadline, "the kill point was not reached within 120 s"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (run_dir,) = (runs / "deattention").iterdir()
    assert not (run_dir / "checkpoints" / "final.pt").exists()
    partial = _cache(run_dir)
    assert partial  # the killed part wrote masks; the resumed part reads them
    resumed = subprocess.run([*cmd, str(run_dir), "resume"], env=env, check=False, timeout=180)
    assert resumed.returncode == 0
    ours, theirs = _final(run_dir), _final(reference.run_dir)
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert torch.equal(ours[key], theirs[key]), key
    assert _cache(run_dir) == _cache(reference.run_dir)


def test_vainf_teacher_sees_the_preprocessed_training_image(
    labelled_city: Path, tmp_path: Path
) -> None:
    from test_vainf_teacher import _checkpoint

    from vpr_bench_deattention.teachers import VainFTeacher

    weights = _checkpoint(tmp_path, 10)
    registries, method, config = _method_config(
        ("trainer.teacher=vainf-deeplabv3plus", f"trainer.teacher_weights={weights}")
    )
    data = load_training_data(
        method, registries, config, dataset_name="synthcity", data_root=labelled_city
    )
    ctx = TrainContext(
        model=resolve_model(registries, method, config),
        loss=registries_loss(registries, method, config),
        config=config.trainer,
        train_split=data.train_split,
        preprocess=registries.models.get(method.model).preprocess,
        run_dir=tmp_path / "run",
        seed=config.seed,
    )
    engine = Engine(ctx, batch_rows=4)
    teacher = VainFTeacher(weights, config.model.deatt_categories)
    paradigm = DeAttentionParadigm(ctx, engine, teacher)
    seen: list[torch.Tensor] = []
    keep = teacher.keep

    def spy(path: Path, pixels: torch.Tensor | None) -> torch.Tensor:
        assert pixels is not None
        seen.append(pixels)
        return keep(path, pixels)

    teacher.keep = spy  # type: ignore[method-assign]
    target = paradigm.target(3, (8, 11))
    assert torch.equal(seen[0], paradigm.images.load(3))  # ImageNet-normalised, train size
    assert torch.equal(target, torch.zeros(1, 8, 11))  # sky everywhere -> de-attended
    assert torch.equal(paradigm.target(3, (8, 11)), target) and len(seen) == 1  # cached
