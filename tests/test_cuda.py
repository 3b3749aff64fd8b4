"""The harness's CUDA paths against the CPU (``pytest -m gpu`` on a CUDA machine).

Every test is short (seconds). Comparisons with the CPU run with TF32 off (cuDNN convolutions
default to TF32 on Ampere and later, which is not float32); the OOM test caps this process's
share of GPU memory and restores it.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from tests.train.synth import tiny_context
from vpr_bench.builtin.tiny_model import TinyGeMConfig, build_tiny_gem
from vpr_bench.data.images import make_loader
from vpr_bench.eval.extract import extract_descriptors
from vpr_bench.eval.search import knn
from vpr_bench.protocol import ResizePolicy
from vpr_bench.specs import IMAGENET
from vpr_bench.testing import free_port
from vpr_bench.train.mining import TupleMiner, training_ground_truth
from vpr_bench.train.state import load_train_state
from vpr_bench.train.tuples import fit

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
    pytest.mark.usefixtures("cuda_true_fp32"),
]


def _images(folder: Path, n: int, h: int, w: int, seed: int = 0) -> list[Path]:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"{i:03d}.png"
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def _unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_knn_cuda_matches_cpu_in_many_blocks_with_duplicates() -> None:
    rng = np.random.default_rng(3)
    q, db = _unit(rng, 300, 64), _unit(rng, 5000, 64)
    db[1000:1010] = db[7]  # exact duplicates tie and must keep database order
    q[:5] = db[7]
    cpu = knn(q, db, 25, device="cpu", chunk_bytes=1 << 20)
    gpu = knn(q, db, 25, device="cuda", chunk_bytes=1 << 20)
    np.testing.assert_array_equal(gpu[0], cpu[0])
    np.testing.assert_allclose(gpu[1], cpu[1], atol=1e-5)
    assert gpu[0][0, :11].tolist() == [7, *range(1000, 1010)]


def test_loader_pins_memory_for_cuda(tmp_path: Path) -> None:
    paths = _images(tmp_path, 6, 24, 32)
    for workers in (0, 2):
        loader = make_loader(paths, ResizePolicy(), IMAGENET, 4, num_workers=workers, device="cuda")
        batches = [batch for _, batch in loader]
        assert [b.shape[0] for b in batches] == [4, 2]
        assert all(b.is_pinned() for b in batches)
    unpinned = make_loader(paths, ResizePolicy(), IMAGENET, 4, device="cpu")
    assert not any(batch.is_pinned() for _, batch in unpinned)


def test_extraction_cuda_matches_cpu_and_half_precisions_are_close(tmp_path: Path) -> None:
    model = build_tiny_gem(TinyGeMConfig(width=8, dim=32, seed=0))
    paths = _images(tmp_path, 10, 48, 64)
    cpu = extract_descriptors(model, paths, ResizePolicy(), IMAGENET, batch_size=4)
    gpu = extract_descriptors(model, paths, ResizePolicy(), IMAGENET, batch_size=4, device="cuda")
    np.testing.assert_allclose(gpu, cpu, atol=1e-5)
    for precision in ("bf16", "fp16"):
        half = extract_descriptors(
            model, paths, ResizePolicy(), IMAGENET, device="cuda", precision=precision
        )
        assert half.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(half, axis=1), 1.0, atol=1e-5)
        assert (half * cpu).sum(1).min() >= 0.999, precision


class _Wide(nn.Module):
    """Large activations per image (so a capped allocator refuses big batches)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(
            nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1)
        )
        self.descriptor_dim = 64
        self.ok_batches: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x).mean(dim=(2, 3))
        self.ok_batches.append(int(x.shape[0]))
        return nn.functional.normalize(out, dim=1)


def test_out_of_memory_halves_the_batch_on_a_real_device(tmp_path: Path) -> None:
    paths = _images(tmp_path, 16, 512, 512)
    model = _Wide()
    reference = extract_descriptors(
        model, paths, ResizePolicy(), IMAGENET, batch_size=1, device="cuda"
    )
    model.ok_batches.clear()
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    total = torch.cuda.get_device_properties(0).total_memory
    # Room for the model and about one 512x512 image's activations (64 MiB each), not 16.
    allowed = torch.cuda.memory_reserved() + 400 * 2**20
    torch.cuda.set_per_process_memory_fraction(min(1.0, allowed / total))
    try:
        got = extract_descriptors(
            model, paths, ResizePolicy(), IMAGENET, batch_size=16, device="cuda"
        )
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
        torch.cuda.empty_cache()
    assert sum(model.ok_batches) == 16 and max(model.ok_batches) < 16, model.ok_batches
    np.testing.assert_allclose(got, reference, atol=1e-5)


def test_tuple_miner_cuda_matches_cpu() -> None:
    rng = np.random.default_rng(0)
    n_db, n_q = 600, 200
    db, q = _unit(rng, n_db, 32), _unit(rng, n_q, 32)
    db_utm = np.stack([np.arange(n_db) * 2.0, np.zeros(n_db)], axis=1)
    q_utm = np.stack([rng.uniform(0, 2.0 * n_db, n_q), np.zeros(n_q)], axis=1)
    gt = training_ground_truth(db_utm, q_utm, 10.0, 25.0)
    chunk = torch.arange(len(gt.query_ids))
    q_t, db_t = torch.from_numpy(q[gt.query_ids]), torch.from_numpy(db)
    plans = {}
    for device in ("cpu", "cuda"):
        # A pool as large as the database: every candidate is drawn, so mining is exact.
        miner = TupleMiner(gt, neg_num=5, neg_pool=n_db, device=device, max_elements=4096)
        plans[device] = miner.mine(chunk, q_t.to(device), db_t.to(device), seed=0)
    torch.testing.assert_close(plans["cuda"][:, :2], plans["cpu"][:, :2])
    assert torch.equal(plans["cuda"][:, 2:].sort(1).values, plans["cpu"][:, 2:].sort(1).values)


def _train(root: Path, name: str, device: str, **overrides: object) -> dict[str, torch.Tensor]:
    ctx = tiny_context(root, root / name, epochs=1, neg_pool=64, **overrides)
    fit(dataclasses.replace(ctx, device=device))
    state, _ = load_train_state(root / name / "checkpoints" / "final.pt")
    return dict(state["model"])


def test_training_on_cuda_fp32_matches_cpu_and_bf16_autocast_trains(tmp_path: Path) -> None:
    cpu = _train(tmp_path, "cpu", "cpu")
    gpu = _train(tmp_path, "cuda", "cuda")
    for key, value in cpu.items():
        torch.testing.assert_close(gpu[key].cpu(), value, rtol=1e-3, atol=1e-4, msg=key)
    amp = _train(tmp_path, "amp", "cuda", amp=True)
    start = tiny_context(tmp_path, tmp_path / "unused").model.state_dict()
    moved = [
        k for k, v in amp.items() if v.is_floating_point() and not torch.equal(v.cpu(), start[k])
    ]
    assert moved and all(torch.isfinite(v).all() for v in amp.values())


def _nccl_worker(port: int, out: str) -> None:
    import torch.distributed as dist

    from vpr_bench.train.distributed import unwrap

    torch.cuda.set_device(0)
    dist.init_process_group("nccl", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    try:
        model = build_tiny_gem(TinyGeMConfig(width=4, dim=16, seed=0)).cuda()
        plain = build_tiny_gem(TinyGeMConfig(width=4, dim=16, seed=0)).cuda()
        ddp = nn.parallel.DistributedDataParallel(model, device_ids=[0])
        x = torch.randn(
            4, 3, 32, 32, device="cuda", generator=torch.Generator(device="cuda").manual_seed(0)
        )
        ddp(x).square().sum().backward()
        plain(x).square().sum().backward()
        for a, b in zip(unwrap(ddp).parameters(), plain.parameters(), strict=True):
            torch.testing.assert_close(a.grad, b.grad)
        gathered = [torch.empty(3, device="cuda")]
        dist.all_gather(gathered, torch.arange(3.0, device="cuda"))
        flag = torch.ones(1, device="cuda")
        dist.all_reduce(flag)
        dist.barrier()
        assert gathered[0].tolist() == [0.0, 1.0, 2.0] and flag.item() == 1.0
        Path(out).write_text(dist.get_backend())
    finally:
        dist.destroy_process_group()


def test_nccl_process_group_and_ddp_in_one_process(tmp_path: Path) -> None:
    """One GPU, so one rank (NCCL refuses two ranks on one device); the sharding logic of
    several ranks is covered by the two-process gloo tests."""
    out = tmp_path / "backend.txt"
    proc = multiprocessing.get_context("spawn").Process(
        target=_nccl_worker, args=(free_port(), str(out))
    )
    proc.start()
    proc.join(timeout=120)
    if proc.is_alive():
        proc.kill()
        pytest.fail("NCCL worker did not finish within 120 s")
    assert proc.exitcode == 0 and out.read_text() == "nccl"
