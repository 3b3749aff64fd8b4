"""De-attention mask targets per training step: the teacher each step vs the mask cache.

A step of the paper's recipe forwards 4 tuples of 1 query + 1 positive + 10 negatives = 48
images, and the mask loss needs ``M_gt`` of each at the feature-map size (30x40 for VGG16 at
480x640). The masks are fixed per image, so the ``deattention-mining`` trainer caches them at
map size on disk (``<run>/mask-cache``, keyed by teacher identity + image sha256) and in
memory. Measured on the synthetic city (tiny, with ``--labels``) with the ``synthcity``
teacher (renderer class maps -> keep table -> bicubic to 30x40), same run, side by side:

* ``teacher``: read the class map and resize it for every image of every step;
* ``disk cache``: a fresh trainer (as after ``--resume``) reading the cached ``.npy`` masks;
* ``memory``: the trainer's in-memory masks after their first use.

The VainF DeepLabV3+ teacher is not available in this version, so the teacher cost here is
the cheapest one (a PNG decode); a segmentation network per image would only widen the gap.
Rewrites ``benchmarks/results/deattention-masks-cpu.md``.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

from benchmarks.measure import environment
from vpr_bench.data.synthcity import prepare

RESULTS = Path(__file__).resolve().parent / "results"
STEP_IMAGES, STEPS, MAP = 48, 20, (30, 40)

deattention = pytest.importorskip("vpr_bench_deattention.teachers")


def _steps(images: list[Path]) -> list[list[Path]]:
    gen = torch.Generator().manual_seed(0)
    return [
        [images[int(i)] for i in torch.randint(len(images), (STEP_IMAGES,), generator=gen)]
        for _ in range(STEPS)
    ]


def test_mask_targets_cached_vs_teacher(tmp_path_factory: pytest.TempPathFactory) -> None:
    torch.set_num_threads(2)
    city = prepare(tmp_path_factory.mktemp("city"), "tiny", seed=0, progress=False, labels=True)
    images = sorted((city / "images/train").rglob("*.jpg"))
    steps = _steps(images)
    teacher = deattention.SynthCityTeacher(("human", "vehicle", "sky"))
    cache = deattention.MaskCache(tmp_path_factory.mktemp("cache"))
    digests = {p: deattention.image_digest(p) for p in images}

    def key(path: Path) -> str:
        return deattention.MaskCache.key(teacher.identity, digests[path], "", MAP)

    start = time.perf_counter()
    computed: dict[Path, torch.Tensor] = {}
    for step in steps:
        for p in step:
            computed[p] = deattention.mask_target(teacher.keep(p, None), MAP)
    t_teacher = time.perf_counter() - start
    for p, m in computed.items():  # what the trainer writes once per image (not timed)
        cache.put(key(p), m)

    start = time.perf_counter()
    memo: dict[Path, torch.Tensor] = {}
    for step in steps:
        for p in step:
            got = cache.get(key(p))
            assert got is not None and torch.equal(got, computed[p])
            memo[p] = got
    t_disk = time.perf_counter() - start

    start = time.perf_counter()
    for step in steps:
        batch = torch.stack([memo[p] for p in step])
    t_memory = time.perf_counter() - start
    assert batch.shape == (STEP_IMAGES, 1, *MAP)

    n = STEPS * STEP_IMAGES
    rows = [("teacher every step", t_teacher), ("disk cache", t_disk), ("memory", t_memory)]
    env = environment(torch.get_num_threads())
    lines = [
        "# De-attention mask targets per step: teacher vs cache, CPU",
        "",
        f"Measured {env['date']} on {env['cpu']} ({env['threads']} torch threads, shared "
        f"machine: 4 engineers on 2 cores, so times are indicative), Python {env['python']}, "
        f"torch {env['torch']}.",
        "",
        f"{STEPS} steps of {STEP_IMAGES} images (4 tuples x 12), synthcity tiny with labels, "
        f"synthcity teacher (human, vehicle, sky), targets at {MAP[0]}x{MAP[1]}.",
        "",
        "| source of M_gt | ms / step | images / s |",
        "|---|---|---|",
        *[f"| {name} | {1000 * t / STEPS:.1f} | {n / t:.0f} |" for name, t in rows],
        "",
        f"Disk cache / teacher: **{t_disk / t_teacher:.2f}**; memory / teacher: "
        f"**{t_memory / t_teacher:.3f}**.",
        "",
    ]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "deattention-masks-cpu.md").write_text("\n".join(lines))
    assert t_memory < t_teacher
