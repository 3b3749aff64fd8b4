"""DaCo's view augmentation: the original per-sample PIL pipeline against ours, same run.

One DaCo view step's worth of images, 64 views (16 items x 4 views) of 480 x 640 photo-like
images (Tokyo 24/7's query size) to 256 x 256, in one thread:

* ``pil``: the original transform (DaCo utils.py:16-23, rebuilt from methods.md B.3 with
  torchvision's PIL transforms): RandomResizedCrop(256, scale 0.2-1) - RandomApply(ColorJitter
  (0.4, 0.4, 0.4, 0.1), p 0.8) - RandomGrayscale(0.2) - RandomHorizontalFlip - ToTensor, one
  PIL image at a time (what each of its 8 DataLoader workers does);
* ``tensor``: :meth:`vpr_bench_daco.augment.ViewAugment.apply`, one uint8 tensor at a time
  (the trainer's default; keyed draws);
* ``batched``: :func:`vpr_bench_daco.augment_batch.augment_batch` on the whole batch (the
  trainer's ``trainer.batched_augment``), on the CPU here and on CUDA when there is one.

All three draw from the same distributions (torchvision's parameterisation; the batched one
takes the tensor path's own draws, and tests/test_daco_augment.py checks both). Best of 3
passes; writes ``benchmarks/results/daco-augment-cpu.md`` (and ``-cuda`` with a GPU).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from measure import environment
from PIL import Image

RESULTS = Path(__file__).resolve().parent / "results"
VIEWS, HEIGHT, WIDTH, CROP, ROUNDS = 64, 480, 640, 256, 3


def _photos() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    out = []
    for _ in range(16):
        coarse = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
        out.append(np.asarray(Image.fromarray(coarse).resize((WIDTH, HEIGHT), Image.BICUBIC)))
    return [out[i % 16] for i in range(VIEWS)]


def _best(run: object) -> float:
    times = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        run()  # type: ignore[operator]
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return min(times)


def measure_all(
    original: Any,
    augment: Any,
    pil_images: list[Image.Image],
    tensors: list[torch.Tensor],
    batch: torch.Tensor,
    keys: list[tuple[int, ...]],
) -> dict[str, float]:
    """Seconds per view step of each pipeline (best of ROUNDS)."""
    from vpr_bench_daco.augment_batch import augment_batch

    rows = {
        "pil (original, per sample)": _best(lambda: [original(im) for im in pil_images]),
        "tensor (ours, per sample)": _best(
            lambda: [augment.apply(t, k) for t, k in zip(tensors, keys, strict=True)]
        ),
        "batched (ours, cpu)": _best(lambda: augment_batch(augment, batch, keys, "cpu")),
    }
    if torch.cuda.is_available():
        augment_batch(augment, batch, keys, "cuda")  # warm-up
        rows["batched (ours, cuda)"] = _best(lambda: augment_batch(augment, batch, keys, "cuda"))
    return rows


def test_view_augmentation_throughput(benchmark: Any) -> None:
    from torchvision import transforms

    from vpr_bench_daco.augment import ViewAugment

    torch.set_num_threads(1)
    arrays = _photos()
    pil_images = [Image.fromarray(a) for a in arrays]
    tensors = [torch.from_numpy(a).permute(2, 0, 1).contiguous() for a in arrays]
    batch = torch.stack(tensors)
    original = transforms.Compose(
        [
            transforms.RandomResizedCrop(CROP, scale=(0.2, 1.0)),
            transforms.RandomApply([transforms.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
            transforms.RandomGrayscale(p=0.2),
            transforms.RandomHorizontalFlip(p=0.5),
            transforms.ToTensor(),
        ]
    )
    augment = ViewAugment(size=CROP)
    keys = [(1, 0, i, 0) for i in range(VIEWS)]
    rows: dict[str, float] = {}

    def measure() -> None:
        rows.update(measure_all(original, augment, pil_images, tensors, batch, keys))

    benchmark.pedantic(measure, rounds=1, iterations=1)
    devices = ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]
    benchmark.extra_info.update({name: VIEWS / t for name, t in rows.items()})
    env = environment(1)
    lines = [
        "# DaCo view augmentation, one view step (64 views of 480 x 640 to 256 x 256)",
        "",
        f"Measured {env['date']} on {env['cpu']} (shared machine), one thread, torch "
        f"{env['torch']}, Python {env['python']}; best of {ROUNDS} passes. Same distributions "
        "(tests/test_daco_augment.py).",
        "",
        "| pipeline | views/s | time per step (s) |",
        "|---|---|---|",
    ]
    lines += [f"| {name} | {VIEWS / t:.1f} | {t:.3f} |" for name, t in rows.items()]
    RESULTS.mkdir(exist_ok=True)
    suffix = "cuda" if "cuda" in devices else "cpu"
    (RESULTS / f"daco-augment-{suffix}.md").write_text("\n".join(lines) + "\n")
    assert all(t > 0 for t in rows.values())


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__, "-q"])
