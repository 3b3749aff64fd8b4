"""Image loading (decode, resize, normalise): ours against the plain Pillow pipeline, same run.

Both load the same seeded 480 x 640 JPEGs (Pittsburgh's size, quality 90) one at a time in
one thread, under the protocols' two common policies:

* ``native`` (hard 480 x 640 on 480 x 640 files: no resize), and
* ``shorter 240`` (a resize, as protocols with a shorter-side rule do on larger images).

* ``ours``: :func:`vpr_bench.data.images.load_image` (torchvision.io decode into a uint8
  tensor, Pillow's resize, normalisation in torch).
* ``reference``: the pipeline of the original implementations as we had it before: Pillow
  decode and ``convert("RGB")``, Pillow resize, float32 numpy normalisation, transpose.

The outputs must be bit-identical (asserted); only the time may differ. Each run rewrites
``benchmarks/results/decode-cpu.md``.
"""

from __future__ import annotations

import datetime as dt
import platform
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from vpr_bench.data.images import load_image, output_size
from vpr_bench.protocol import ResizePolicy
from vpr_bench.specs import IMAGENET

RESULTS = Path(__file__).resolve().parent / "results"
N_IMAGES, ROUNDS = 48, 3
POLICIES = {"native": ResizePolicy.hard(480, 640), "shorter 240": ResizePolicy.shorter_side(240)}


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Photo-like JPEGs: smooth upsampled noise with edges, like street images compress."""
    folder = tmp_path_factory.mktemp("decode_bench")
    rng = np.random.default_rng(0)
    paths = []
    for i in range(N_IMAGES):
        coarse = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
        image = Image.fromarray(coarse).resize((640, 480), Image.Resampling.BICUBIC)
        paths.append(folder / f"{i:03d}.jpg")
        image.save(paths[-1], quality=90)
    return paths


def _reference(path: Path, policy: ResizePolicy) -> torch.Tensor:
    with Image.open(path) as image:
        rgb = image.convert("RGB")
    height, width = output_size(rgb.width, rgb.height, policy)
    if (height, width) != (rgb.height, rgb.width):
        rgb = rgb.resize((width, height), Image.Resampling.BILINEAR)
    array = np.asarray(rgb, dtype=np.float32) / 255.0
    array = (array - np.float32(IMAGENET.mean)) / np.float32(IMAGENET.std)
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))


def _images_per_s(load, paths: list[Path], policy: ResizePolicy) -> float:  # type: ignore[no-untyped-def]
    load(paths[0], policy)
    best = float("inf")
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for path in paths:
            load(path, policy)
        best = min(best, time.perf_counter() - start)
    return len(paths) / best


def _ours(path: Path, policy: ResizePolicy) -> torch.Tensor:
    return load_image(path, policy, IMAGENET)


def test_loading_ours_vs_pillow_pipeline(photos: list[Path]) -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rows = []
        for name, policy in POLICIES.items():
            for path in photos[:4]:
                assert torch.equal(_ours(path, policy), _reference(path, policy))
            ours = _images_per_s(_ours, photos, policy)
            reference = _images_per_s(_reference, photos, policy)
            rows.append((name, ours, reference))
    finally:
        torch.set_num_threads(threads)
    _write(rows)
    for _, ours, reference in rows:
        assert ours > reference


def _write(rows: list[tuple[str, float, float]]) -> None:
    RESULTS.mkdir(exist_ok=True)
    lines = [
        "# Image loading (decode + resize + normalise), CPU, one thread",
        "",
        f"Measured {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')} on "
        f"{platform.processor() or platform.machine()} (shared machine), Python "
        f"{platform.python_version()}, torch {torch.__version__}, torchvision "
        f"{torchvision.__version__}, Pillow {Image.__version__}, numpy {np.__version__}.",
        "",
        f"{N_IMAGES} photo-like 480 x 640 JPEGs (quality 90), best of {ROUNDS} passes; outputs "
        "bit-identical between the two (asserted).",
        "",
        "| policy | ours (img/s) | Pillow pipeline (img/s) | ratio ours / reference (time) |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {name} | {ours:.1f} | {reference:.1f} | **{reference / ours:.3f}** |"
        for name, ours, reference in rows
    ]
    lines.append("")
    (RESULTS / "decode-cpu.md").write_text("\n".join(lines))
