"""Two gloo processes train the model with DDP and end with identical weights.

DDP as the harness wraps it (``find_unused_parameters=False``): every trainable parameter must
receive a gradient in every step, which the unused ``global_bn`` would break if it were
trainable (it is frozen). Each rank feeds its own images to the region forward and the SFRS
loss; after 2 SGD steps the parameters of both ranks are bit-identical and have moved.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from vpr_bench.testing import free_port
from vpr_bench.weights import safe_load
from vpr_bench_clusvpr.config import ClusVPRConfig
from vpr_bench_clusvpr.model import build_clusvpr
from vpr_bench_clusvpr.plugin import QUICK_PROFILE

MODEL = {k.removeprefix("model."): v for k, v in QUICK_PROFILE.items() if k[:6] == "model."}


def _flat(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters() if p.requires_grad])


def _worker(rank: int, port: int, out_dir: str) -> None:
    import torch.distributed as dist

    from vpr_bench_sfrs.loss import SFRSConfig, SFRSLoss

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        model = build_clusvpr(ClusVPRConfig(**MODEL)).train()
        start = _flat(model)
        teacher = build_clusvpr(ClusVPRConfig(**MODEL)).train()
        ddp = torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=False)
        trainable = [p for p in model.parameters() if p.requires_grad]
        optimiser = torch.optim.SGD(trainable, lr=1e-2, momentum=0.9)
        loss_fn = SFRSLoss(SFRSConfig(temperatures=(0.06, 0.06)))
        gen = torch.Generator().manual_seed(100 + rank)  # each rank its own tuples
        for _ in range(2):
            images = torch.randn(2 * 4, 3, 96, 128, generator=gen) * 60  # [q, p, n, diff] x 2
            regions = ddp(images, regions=True).unflatten(0, (2, 4))  # [2, 4, 21, L]
            with torch.no_grad():
                taught = teacher(images, regions=True).unflatten(0, (2, 4))
            anchors, pairs, diff = regions[:, 0], regions[:, 1:3], regions[:, 3:]
            sim = torch.einsum("brl,bpsl->bprs", anchors, diff)
            sim_teacher = torch.einsum("brl,bpsl->bprs", taught[:, 0], taught[:, 3:])
            mask = torch.ones(2, 1, dtype=torch.bool)
            loss = loss_fn(anchors, pairs, sim, sim_teacher, mask, 1)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        torch.save({"start": start, "end": _flat(model)}, Path(out_dir) / f"rank{rank}.pt")
        dist.barrier()
    finally:
        dist.destroy_process_group()


def test_two_gloo_ranks_keep_identical_weights(tmp_path: Path) -> None:
    import torch.multiprocessing as mp

    mp.spawn(_worker, args=(free_port(), str(tmp_path)), nprocs=2, join=True)  # type: ignore[attr-defined,no-untyped-call]
    first, second = (safe_load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    assert torch.equal(first["start"], second["start"])
    assert torch.equal(first["end"], second["end"])
    assert not torch.equal(first["start"], first["end"])
