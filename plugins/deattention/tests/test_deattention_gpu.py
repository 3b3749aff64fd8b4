"""CUDA checks of the de-attention model and the VainF teacher (skipped without a GPU)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from vpr_bench_deattention.config import DeAttentionConfig
from vpr_bench_deattention.model import build_deattention_netvlad
from vpr_bench_deattention.teachers import VainFTeacher

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]


def _model() -> torch.nn.Module:
    cfg = DeAttentionConfig(pretrained=None, num_clusters=64)  # VGG16 + NetVLAD-64, random
    return build_deattention_netvlad(cfg).eval()


def test_cuda_fp32_matches_cpu() -> None:
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    model = _model()
    images = torch.randn(2, 3, 240, 320)
    with torch.no_grad():
        cpu = model(images)
        gpu = model.cuda()(images.cuda()).cpu()
    torch.testing.assert_close(gpu, cpu, rtol=1e-4, atol=1e-5)


def test_bf16_trunk_keeps_the_descriptor() -> None:
    model = _model().cuda()
    images = torch.randn(4, 3, 480, 640, device="cuda")
    with torch.no_grad():
        fp32 = model(images)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            bf16 = model(images).float()
    assert float(F.cosine_similarity(fp32, bf16).min()) >= 0.999


def test_vainf_teacher_on_cuda_matches_cpu(tmp_path: Path) -> None:
    from test_vainf_teacher import _checkpoint

    weights = _checkpoint(tmp_path, 13)
    pixels = torch.randn(3, 96, 128)
    cpu = VainFTeacher(weights, ("vehicle",)).keep(tmp_path / "x.jpg", pixels)
    gpu = VainFTeacher(weights, ("vehicle",), "cuda").keep(tmp_path / "x.jpg", pixels)
    assert torch.equal(cpu, gpu) and float(gpu.max()) == 0.0
