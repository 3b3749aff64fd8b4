"""``deattention-mining`` under DDP: two gloo processes on the tiny labelled city.

Each rank trains on its own share of the tuples (and logs their loss), runs the teacher on its
own images (the masks go to one shared cache, written atomically) and reclusters the
de-attention centroids from the same images, so both start from the same layer; DDP then
averages the gradients. What must
hold: both ranks end with the same parameters, the loop counts global steps, and only rank 0
writes checkpoints. About 10 s.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch.multiprocessing as mp

from vpr_bench import resolve, resolve_experiment
from vpr_bench.testing import free_port, isolated_manager, prepare_synthcity, train_on_rank
from vpr_bench.train import TrainContext, load_training_data
from vpr_bench.weights import safe_load
from vpr_bench_deattention.trainer import fit

PLUGINS = ("vpr_bench_netvlad.plugin", "vpr_bench_deattention.plugin")
SETS = (
    "model.init_images=16",
    "trainer.height=64",
    "trainer.width=85",
    "trainer.epochs=1",
    "trainer.cache_queries=30",
    "trainer.val_every=0",
    "device=cpu",
)


def _context(city: Path, run_dir: Path) -> TrainContext:
    registries = isolated_manager(PLUGINS).registries()
    method = registries.methods.get("deattention")
    config = resolve_experiment(method, registries, profile="quick", sets=SETS)
    data = load_training_data(method, registries, config, dataset_name="synthcity", data_root=city)
    model = resolve(registries.models.get(method.model).build)(config.model)
    return TrainContext(
        model=model,
        loss=resolve(registries.losses.get(method.loss).build)(config.loss),
        config=config.trainer,
        train_split=data.train_split,
        preprocess=registries.models.get(method.model).preprocess,
        run_dir=run_dir,
        seed=config.seed,
        method="deattention",
    )


def _worker(rank: int, city: str, run_dir: str, port: int) -> None:
    train_on_rank(rank, 2, port, partial(_context, Path(city), Path(run_dir)), fit, Path(run_dir))


def test_two_gloo_processes_train_together(tmp_path: Path) -> None:
    city = prepare_synthcity(tmp_path / "data", "tiny", seed=0, labels=True, progress=False)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    mp.spawn(_worker, args=(str(city), str(run_dir), free_port()), nprocs=2, join=True)
    first, second = (safe_load(run_dir / f"model-{r}.pt") for r in (0, 1))
    assert isinstance(first, dict) and isinstance(second, dict)
    trained = [k for k in first if "running" not in k and "num_batches" not in k]
    assert trained, "no parameters saved"
    for key in trained:  # DDP averaged the gradients: the ranks moved together
        torch.testing.assert_close(first[key], second[key], rtol=0, atol=1e-6, msg=key)
    histories: list[Any] = [safe_load(run_dir / f"history-{r}.pt") for r in (0, 1)]
    # the same global steps and epochs on both ranks; each logs the loss of its own tuples
    assert [(h["epoch"], h["step"]) for h in histories[0]] == [
        (h["epoch"], h["step"]) for h in histories[1]
    ]
    assert histories[0][-1]["step"] > 0
    checkpoints = sorted(p.name for p in (run_dir / "checkpoints").glob("*.pt"))
    assert "final.pt" in checkpoints  # rank 0 wrote them; rank 1 wrote nothing beside
    assert any((run_dir / "mask-cache").rglob("*")), "the teacher's masks were not cached"
