"""daco-views under DDP: two gloo processes, each its share of the batch (its own negatives).

The DaCo loss compares rows within a batch, so a 2-process run is not the 1-process run: each
rank's NT-Xent sees its own B/2 items, as DaCo's one-GPU code would with a batch of B/2. What
must hold: the ranks step together (DDP averages the gradients, so both end with the same
parameters; BatchNorm statistics stay per rank), the loop takes the global batch's steps, and
rank 0 writes the checkpoints. About 25 s (``-m slow``).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from vpr_bench import get_registries, resolve
from vpr_bench.data import GeoSplit
from vpr_bench.testing import free_port, prepare_synthcity, train_on_rank
from vpr_bench.train import TrainContext
from vpr_bench.weights import safe_load
from vpr_bench_daco.config import DaCoConfig
from vpr_bench_daco.losses import DaCoLoss, DaCoLossConfig
from vpr_bench_daco.model import build_daco
from vpr_bench_daco.plugin import PREPROCESS
from vpr_bench_daco.trainer import DaCoViewsConfig, fit

pytestmark = pytest.mark.slow


def _context(city: Path, run_dir: Path) -> TrainContext:
    pairs = resolve(get_registries(plugins="daco").datasets.get("synthcity").load_pairs)(city)
    torch.manual_seed(0)
    model = build_daco(DaCoConfig(backbone="tiny", tiny_width=4, hidden_dim=8, proj_dim=8))
    config = DaCoViewsConfig(epochs=1, items_per_batch=8, crop=24, cache_images=True)
    return TrainContext(
        model=model,
        loss=DaCoLoss(DaCoLossConfig()),
        config=config,
        train_split=GeoSplit("synthcity-train", (), ()),
        preprocess=PREPROCESS,
        run_dir=run_dir,
        pairs=pairs,
        seed=3,
        method="daco",
    )


def _worker(rank: int, city: str, run_dir: str, port: int) -> None:
    train_on_rank(rank, 2, port, partial(_context, Path(city), Path(run_dir)), fit, Path(run_dir))


def test_two_gloo_processes_train_together(tmp_path: Path) -> None:
    city = prepare_synthcity(tmp_path / "data", "tiny", seed=0, progress=False)
    run_dir = tmp_path / "ddp"
    run_dir.mkdir()
    mp.spawn(_worker, args=(str(city), str(run_dir), free_port()), nprocs=2, join=True)
    final = safe_load(run_dir / "checkpoints" / "final.pt")
    assert isinstance(final, dict)
    histories = [safe_load(run_dir / f"history-{r}.pt") for r in (0, 1)]
    assert histories[0][0]["step"] == 48 // 8  # 48 items, global batches of 8
    ranks = [safe_load(run_dir / f"model-{r}.pt") for r in (0, 1)]
    fresh = _context(city, tmp_path / "unused").model
    parameters = {name for name, _ in fresh.named_parameters()}
    for key, value in ranks[0].items():
        assert torch.equal(value, final["model"][key]), key  # rank 0 wrote the checkpoint
        if key in parameters:  # BatchNorm running statistics stay per rank (no sync_bn)
            assert torch.equal(value, ranks[1][key]), key  # the ranks stepped together
    untouched = fresh.state_dict()
    moved = [k for k, v in final["model"].items() if v.is_floating_point()]
    assert any(not torch.equal(final["model"][k], untouched[k]) for k in moved)
