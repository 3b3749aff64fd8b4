"""Training ``clusvpr`` end to end on the tiny synthetic city, and resuming it bit for bit.

The quick profile through the public training API (prepare, 2 generations: the teacher, the
re-ranking and the soft region loss all run), once uninterrupted and once stopped by a crash in
generation 1 and resumed from its last checkpoint: the final weights must be identical. A few
minutes on 2 CPU cores, so ``slow`` (run with ``-m slow``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from vpr_bench import resolve_experiment
from vpr_bench.testing import isolated_manager, prepare_synthcity
from vpr_bench.train import load_training_data, resume_training, train_method

PLUGINS = ("vpr_bench_netvlad.plugin", "vpr_bench_sfrs.plugin", "vpr_bench_clusvpr.plugin")
SETS = ("model.init_images=16", "trainer.checkpoint_every_steps=25", "device=cpu")

pytestmark = pytest.mark.slow


class _CrashError(RuntimeError):
    pass


def _train(city: Path, runs: Path, emit: Any = None) -> Any:
    registries = isolated_manager(PLUGINS).registries()
    method = registries.methods.get("clusvpr")
    config = resolve_experiment(method, registries, profile="quick", sets=SETS)
    data = load_training_data(method, registries, config, dataset_name="synthcity", data_root=city)
    return train_method(method, registries, config, data, runs_dir=runs, emit=emit)


def _final(run_dir: Path) -> dict[str, torch.Tensor]:
    from vpr_bench.weights import safe_load

    payload = safe_load(run_dir / "checkpoints" / "final.pt")
    assert isinstance(payload, dict)
    return payload["model"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepare_synthcity(tmp_path_factory.mktemp("data"), "tiny", seed=0, progress=False)


def test_quick_profile_trains_and_resumes_identically(city: Path, tmp_path: Path) -> None:
    reference = _train(city, tmp_path / "reference")
    history = reference.history
    assert [h["generation"] for h in history] == [0, 1]
    assert all(torch.isfinite(torch.tensor(h["loss"])) for h in history)

    seen: list[int] = []

    def crash(event: Any) -> None:
        # Checkpoints of run epoch 1 (generation 1): the first is its start (the generation
        # boundary), the second one 25 steps into it; crash right after that one is written.
        if event.kind == "checkpoint-saved" and event.payload.get("epoch") == 1:
            seen.append(event.payload["step"])
            if len(seen) == 2:
                raise _CrashError("simulated crash in generation 1")

    with pytest.raises(_CrashError):
        _train(city, tmp_path / "crashed", emit=crash)
    assert seen[1] > seen[0]
    (run_dir,) = (tmp_path / "crashed" / "clusvpr").iterdir()
    registries = isolated_manager(PLUGINS).registries()
    resume_training(registries.methods.get("clusvpr"), registries, run_dir)
    ours, theirs = _final(run_dir), _final(reference.run_dir)
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert torch.equal(ours[key], theirs[key]), key
