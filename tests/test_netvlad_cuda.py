"""VGG16 + NetVLAD-64 on CUDA through the harness's extraction (``pytest -m gpu``).

Random weights (nothing is downloaded): fp32 on CUDA equals the CPU (TF32 off), bf16 and fp16
autocast descriptors keep a cosine of at least 0.999 to fp32.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vpr_bench import ResizePolicy
from vpr_bench.eval.extract import extract_descriptors
from vpr_bench_netvlad.config import NetVLADConfig
from vpr_bench_netvlad.model import build_netvlad
from vpr_bench_netvlad.plugin import PREPROCESS

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
    pytest.mark.usefixtures("cuda_true_fp32"),
]


def test_vgg16_netvlad_on_cuda(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(6):
        coarse = rng.integers(0, 256, (15, 20, 3), dtype=np.uint8)
        path = tmp_path / f"{i}.jpg"
        Image.fromarray(coarse).resize((320, 240), Image.BICUBIC).save(path, quality=90)
        paths.append(path)
    model = build_netvlad(NetVLADConfig(backbone="vgg16", num_clusters=64, pretrained=None, seed=0))
    policy = ResizePolicy.hard(240, 320)
    cpu = extract_descriptors(model, paths, policy, PREPROCESS, batch_size=3)
    gpu = extract_descriptors(model, paths, policy, PREPROCESS, batch_size=3, device="cuda")
    assert cpu.shape == (6, 32768)
    assert (gpu * cpu).sum(1).min() >= 0.99999
    np.testing.assert_allclose(gpu, cpu, atol=1e-4)
    for precision in ("bf16", "fp16"):
        half = extract_descriptors(
            model, paths, policy, PREPROCESS, batch_size=3, device="cuda", precision=precision
        )
        assert (half * cpu).sum(1).min() >= 0.999, precision
