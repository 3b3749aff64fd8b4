"""CUDA: a daco-views step under bf16 autocast with channels_last, float32 losses (GPU only)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.gpu


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("method", ["daco", "moco", "npid"])
def test_a_quick_epoch_on_cuda_with_bf16(tmp_path: Path, method: str) -> None:
    from vpr_bench import resolve_experiment
    from vpr_bench.testing import isolated_manager, prepare_synthcity
    from vpr_bench.train import load_training_data, train_method

    city = prepare_synthcity(tmp_path / "data", "tiny", seed=0, progress=False)
    registries = isolated_manager(("vpr_bench_daco.plugin",)).registries()
    spec = registries.methods.get(method)
    sets = (
        "device=cuda",
        "trainer.amp=true",
        "trainer.epochs=1",
        "trainer.items_per_batch=8",
        "trainer.batched_augment=true",
    )
    config = resolve_experiment(spec, registries, profile="quick", sets=sets)
    data = load_training_data(spec, registries, config, dataset_name="synthcity", data_root=city)
    outcome = train_method(spec, registries, config, data, runs_dir=tmp_path / "runs")
    assert all(torch.isfinite(torch.tensor(h["loss"])) for h in outcome.history)
