"""DISAM on CUDA (``pytest -m gpu``; skipped without CUDA; not run on this branch's machine).

Three fp32 training steps on CUDA give the CPU's losses within 1e-4 relative (TF32 off); the
released-size encoder extracts on CUDA as on the CPU; the grouped mean-cos search and the
re-ranking give the CPU's picks.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from _disam_train_setup import context

from vpr_bench_disam.config import DisamConfig
from vpr_bench_disam.metrics import meancos_descriptor
from vpr_bench_disam.model import build_disam
from vpr_bench_disam.submit import grouped_top_n, rerank
from vpr_bench_disam.trainer import fit

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]


@pytest.fixture(autouse=True)
def _true_fp32() -> Iterator[None]:
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn


def test_three_cuda_steps_match_the_cpu(tmp_path: Path) -> None:
    histories = {}
    for device in ("cpu", "cuda"):
        ctx = context(tmp_path / "data", tmp_path / device, niter=3, niter_decay=0, epoch_length=1)
        ctx.device = device
        histories[device] = fit(ctx).history
    assert len(histories["cuda"]) == 3
    for cpu, gpu in zip(histories["cpu"], histories["cuda"], strict=True):
        for key in ("loss_g", "gan", "cycle", "loss_d", "triplet_a", "latent", "sam_a"):
            assert gpu[key] == pytest.approx(cpu[key], rel=1e-4, abs=1e-7), key


def test_released_size_extraction_matches_the_cpu() -> None:
    model = build_disam(DisamConfig(n_domains=2)).eval()
    images = torch.randn(2, 3, 192, 256, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        cpu = model(images, 1)
        gpu = model.cuda()(images.cuda(), 1).cpu()
    assert cpu.shape == (2, 1_048_576)
    torch.testing.assert_close(gpu, cpu, atol=1e-5, rtol=1e-4)


def test_two_stage_search_matches_the_cpu() -> None:
    generator = torch.Generator().manual_seed(1)
    db = torch.randn(544, 256, 8, 8, generator=generator)
    q = db[torch.randint(544, (50,), generator=generator)] + torch.randn(
        50, 256, 8, 8, generator=generator
    )
    groups_db = [f"c{i % 2}" for i in range(544)]
    groups_q = [f"c{i % 2}" for i in range(50)]
    picks = []
    for device in ("cpu", "cuda"):
        d, x = meancos_descriptor(db.to(device)), meancos_descriptor(q.to(device))
        top = grouped_top_n(x, d, groups_q, groups_db, 3)
        picks.append(rerank(top.to(device), x, d).cpu())
    assert torch.equal(picks[0], picks[1])
