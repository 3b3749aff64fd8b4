"""ClusVPR on CUDA (``pytest -m gpu``; skipped without CUDA).

Random weights (nothing is downloaded): fp32 on CUDA equals the CPU (TF32 off), bf16 autocast
keeps the trunk and blocks in bf16 and the GeM, VLAD sums and clustering weights in float32, and
its descriptors keep a cosine of at least 0.999 to fp32; a bf16 training step is finite.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from vpr_bench_clusvpr.aggregator import ClusVPR
from vpr_bench_clusvpr.config import ClusVPRConfig
from vpr_bench_clusvpr.cwt import CWTNet, cluster_value_scale
from vpr_bench_clusvpr.model import ClusVPRModel, build_clusvpr

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]


@pytest.fixture(autouse=True)
def _true_fp32() -> Iterator[None]:
    """TF32 off for the fp32 comparisons (restored afterwards)."""
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn


def _vgg_model() -> ClusVPRModel:
    return build_clusvpr(ClusVPRConfig(pretrained=None, seed=0))


def _images(batch: int, size: tuple[int, int] = (480, 640)) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    return torch.rand(batch, 3, *size, generator=gen) * 255 - 120


def test_cuda_fp32_equals_cpu() -> None:
    model = _vgg_model().eval()
    images = _images(2)
    with torch.no_grad():
        cpu, cpu_regions = model(images), model(images, regions=True)
        model.cuda()
        gpu = model(images.cuda()).cpu()
        gpu_regions = model(images.cuda(), regions=True).cpu()
        tokyo = model(_images(1, (640, 853)).cuda())  # the resize path, batch 1
    assert gpu.shape == (2, 8192) and tokyo.shape == (1, 8192)
    torch.testing.assert_close(gpu, cpu, rtol=0, atol=1e-5)
    torch.testing.assert_close(gpu_regions, cpu_regions, rtol=0, atol=1e-5)


def test_bf16_autocast_keeps_gem_and_density_in_float32() -> None:
    layer = ClusVPR().cuda().eval()
    features = torch.randn(2, 512, 30, 40, device="cuda")
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        blocked = layer.run_blocks(features)
        masses, groups = layer._terms(features)
        block = layer.vit_layer[0]
        assert isinstance(block, CWTNet)
        tokens = block.global_cwt.tokens(features[:, 256:])
        scale = cluster_value_scale(tokens, 10)
        vlad = layer(features)
    assert blocked.dtype == torch.bfloat16 and tokens.dtype == torch.bfloat16
    assert masses.dtype == groups.dtype == scale.dtype == vlad.dtype == torch.float32


def test_bf16_descriptors_keep_cosine_0_999() -> None:
    model = _vgg_model().cuda().eval()
    images = _images(4).cuda()
    with torch.no_grad():
        full = model(images)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            half = model(images).float()
            half_regions = model(images, regions=True).float()
        full_regions = model(images, regions=True)
    assert (full * half).sum(1).min() >= 0.999
    assert (full_regions * half_regions).sum(2).min() >= 0.999


def test_bf16_training_step_is_finite() -> None:
    model = _vgg_model().cuda().train()
    optimiser = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        regions = model(_images(2).cuda(), regions=True).float()
    loss = -(regions[0, 0] * regions[1]).sum()
    loss.backward()
    for name, param in model.named_parameters():
        if param.requires_grad:
            assert param.grad is not None and torch.isfinite(param.grad).all(), name
    optimiser.step()
