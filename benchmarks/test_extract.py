"""Extraction throughput (images/s) of the evaluation runtime, with pytest-benchmark.

Run: ``.venv/bin/pytest benchmarks/test_extract.py --benchmark-only -p no:cacheprovider``
(add ``-m gpu`` on a CUDA machine for the GPU cases). Every case extracts the same seeded
images with the built-in tiny model: the real loader (Pillow decode + normalise), the model and
the float32 re-normalisation, without the descriptor cache. The images/s figure is printed and
stored in the benchmark's ``extra_info``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vpr_bench.builtin.tiny_model import TinyGeMConfig, build_tiny_gem
from vpr_bench.eval.cache import DescriptorCache
from vpr_bench.eval.extract import extract_descriptors, extract_with_stats
from vpr_bench.protocol import ResizePolicy
from vpr_bench.specs import IMAGENET

N_IMAGES = 64


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("bench_images")
    rng = np.random.default_rng(0)
    paths = []
    for i in range(N_IMAGES):
        path = folder / f"{i:04d}.jpg"
        Image.fromarray(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)).save(path, quality=90)
        paths.append(path)
    return paths


def _run(benchmark, images, device: str, precision: str, batch_size: int) -> None:  # type: ignore[no-untyped-def]
    model = build_tiny_gem(TinyGeMConfig())
    policy = ResizePolicy.hard(240, 320)
    extract_descriptors(model, images[:8], policy, IMAGENET, device=device, precision=precision)

    def once() -> np.ndarray:
        return extract_descriptors(
            model,
            images,
            policy,
            IMAGENET,
            device=device,
            precision=precision,
            batch_size=batch_size,
        )

    out = benchmark.pedantic(once, rounds=3, iterations=1)
    assert out.shape == (N_IMAGES, model.descriptor_dim)
    rate = N_IMAGES / benchmark.stats.stats.mean
    benchmark.extra_info["images_per_s"] = rate
    print(f"\n{device} {precision} batch {batch_size}: {rate:.1f} images/s")


def test_cpu_fp32(benchmark, images) -> None:  # type: ignore[no-untyped-def]
    torch.set_num_threads(2)
    _run(benchmark, images, "cpu", "fp32", 16)


def test_cache_hit_is_much_faster(images: list[Path], tmp_path: Path) -> None:
    model = build_tiny_gem(TinyGeMConfig())
    cache = DescriptorCache(tmp_path, model_key="bench")
    policy = ResizePolicy.hard(240, 320)
    first = extract_with_stats(model, images, policy, IMAGENET, cache=cache)
    start = time.perf_counter()
    second = extract_with_stats(model, images, policy, IMAGENET, cache=cache)
    hit_s = time.perf_counter() - start
    assert second.from_cache and hit_s < first.seconds / 5
    print(f"\nextract {first.seconds:.3f} s, cache hit {hit_s * 1000:.1f} ms")


def _best_rate(model: torch.nn.Module, images: list[Path], batch_size: int) -> float:
    policy = ResizePolicy.hard(240, 320)
    extract_descriptors(model, images[:8], policy, IMAGENET, device="cpu", batch_size=batch_size)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        extract_descriptors(model, images, policy, IMAGENET, device="cpu", batch_size=batch_size)
        best = min(best, time.perf_counter() - start)
    return N_IMAGES / best


def test_cpu_batching_side_by_side(images: list[Path], tmp_path: Path) -> None:
    """Batches of 16 against one image at a time, and a cache hit: same model, same images, same
    run; rewrites ``benchmarks/results/extract-cpu.md`` (which batch size is faster on a CPU
    depends on the model and image size, so this records it rather than assuming it)."""
    import datetime as dt
    import platform

    torch.set_num_threads(2)
    model = build_tiny_gem(TinyGeMConfig())
    cache = DescriptorCache(tmp_path, model_key="bench-side-by-side")
    rates = {batch: _best_rate(model, images, batch) for batch in (1, 16)}
    policy = ResizePolicy.hard(240, 320)
    extract_with_stats(model, images, policy, IMAGENET, cache=cache)
    start = time.perf_counter()
    extract_with_stats(model, images, policy, IMAGENET, cache=cache)
    hit_ms = (time.perf_counter() - start) * 1000
    results = Path(__file__).resolve().parent / "results"
    results.mkdir(exist_ok=True)
    lines = [
        "# Descriptor extraction, CPU (built-in tiny model, fp32)",
        "",
        f"Measured {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')} on "
        f"{platform.processor() or platform.machine()} (2 torch threads, shared machine), "
        f"Python {platform.python_version()}, torch {torch.__version__}.",
        "",
        f"{N_IMAGES} random 240 x 320 JPEGs through the real loader (decode, normalise), the "
        "model and the float32 re-normalisation; best of 3 passes.",
        "",
        "| variant | images/s |",
        "|---|---|",
        f"| batches of 16 | {rates[16]:.1f} |",
        f"| one image at a time | {rates[1]:.1f} |",
        f"| descriptor cache hit (all {N_IMAGES}) | {N_IMAGES / (hit_ms / 1000):.0f} |",
        "",
        f"Time ratio batch-16 / batch-1: **{rates[1] / rates[16]:.3f}**; a cache hit takes "
        f"{hit_ms:.1f} ms. On this CPU, large batches of large images run slower than single "
        "images (activations outgrow the caches); choose `--batch-size` per model on CPUs.",
        "",
    ]
    (results / "extract-cpu.md").write_text("\n".join(lines))
    assert hit_ms / 1000 < (N_IMAGES / rates[16]) / 5  # the cache is what makes re-runs cheap


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_cuda(benchmark, images, precision: str) -> None:  # type: ignore[no-untyped-def]
    _run(benchmark, images, "cuda", precision, 32)
