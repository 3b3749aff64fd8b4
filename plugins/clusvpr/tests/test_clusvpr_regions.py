"""The 21 training regions, the map-size paths and forward/backward at the sizes that matter.

No oracle covers the regions (the reference's training path cannot run, methods.md 5.9), so they
are checked against their definition: each s-patch VLAD equals a reference-style aggregation of
its crop of the blocks' output (the residual materialised, the GeM exponent sliced to the
patch), the larger regions are sums of s-patches, and region 0 is the evaluation descriptor.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vpr_bench.errors import ConfigError
from vpr_bench_clusvpr.aggregator import (
    L_PATCHES,
    M_PATCHES,
    REGION_COUNT,
    REGION_NAMES,
    ClusVPR,
    grid_bounds,
    region_sums,
)
from vpr_bench_clusvpr.config import ClusVPRConfig
from vpr_bench_clusvpr.model import ClusVPRModel, build_clusvpr, normalise_vlad
from vpr_bench_clusvpr.plugin import QUICK_PROFILE


def _small(map_size: tuple[int, int] = (6, 8), **kw: int) -> ClusVPR:
    torch.manual_seed(0)
    layer = ClusVPR(dim=16, num_clusters=5, groups=4, map_size=map_size, mlp_dim=16, **kw)
    with torch.no_grad():  # a non-uniform exponent map, so slicing and resizing matter
        layer.GeM_pool.p.uniform_(2.0, 4.0)
    return layer.double()


def _quick_model() -> ClusVPRModel:
    overrides = {k.removeprefix("model."): v for k, v in QUICK_PROFILE.items() if k[:6] == "model."}
    return build_clusvpr(ClusVPRConfig(**overrides))


def _reference_patch_vlad(layer: ClusVPR, crop: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """ClusVPR's per-patch aggregation (clusvpr.py:75-97), residual materialised."""
    x = F.normalize(crop, dim=1)
    y = torch.einsum("od,bdhw->bohw", layer.linear1.weight, x)
    n, _, h, w = y.shape
    g, d = layer.groups, layer.group_dim
    groups = y.reshape(n, g, d, h * w)
    gem = groups.clamp(min=1e-6).pow(p).mean(dim=2).pow(1.0 / p)  # [n, G, N]
    attention = torch.sigmoid(gem)
    logits = torch.einsum("kd,bgdn->bgkn", layer.conv.weight[:, :, 0, 0], groups)
    assign = torch.softmax(logits, dim=2)
    residual = groups[:, :, None] - layer.centroids[None, None, :, :, None]  # [n,G,K,d,N]
    residual = residual * assign[:, :, :, None] * attention[:, :, None, None]
    return residual.sum(dim=-1).sum(dim=1)


@pytest.mark.parametrize("map_size", [(6, 8), (9, 12), (7, 10)], ids=["even", "thirds", "uneven"])
def test_s_patches_are_the_reference_aggregation_of_their_crops(map_size: tuple[int, int]) -> None:
    layer = _small((6, 8)).eval()
    features = torch.randn(2, 16, *map_size, dtype=torch.float64)
    with torch.no_grad():
        patches = layer.patch_vlads(features)
        blocked = layer.run_blocks(features)
        p_map = layer.exponent(*map_size).view(*map_size)
    rows, cols = grid_bounds(map_size[0], 3), grid_bounds(map_size[1], 4)
    assert patches.shape == (2, 12, 5, 8)
    for r in range(3):
        for c in range(4):
            rs, cs = slice(rows[r], rows[r + 1]), slice(cols[c], cols[c + 1])
            with torch.no_grad():
                expected = _reference_patch_vlad(
                    layer, blocked[:, :, rs, cs], p_map[rs, cs].reshape(-1)
                )
            torch.testing.assert_close(patches[:, 4 * r + c], expected, rtol=1e-10, atol=1e-12)


def test_larger_regions_are_sums_of_s_patches() -> None:
    s = torch.randn(3, 12, 5, 8, dtype=torch.float64)
    regions = region_sums(s)
    assert regions.shape == (3, REGION_COUNT, 5, 8) and REGION_COUNT == 21
    assert REGION_NAMES[:3] == ("global", "l0", "l1") and REGION_NAMES[-1] == "s11"
    torch.testing.assert_close(regions[:, 0], s.sum(1), rtol=0, atol=1e-12)
    for i, ids in enumerate(L_PATCHES):
        torch.testing.assert_close(regions[:, 1 + i], s[:, list(ids)].sum(1), rtol=0, atol=1e-12)
    for i, window in enumerate(M_PATCHES):
        torch.testing.assert_close(regions[:, 3 + i], s[:, list(window)].sum(1), rtol=0, atol=1e-12)
    torch.testing.assert_close(regions[:, 9:], s, rtol=0, atol=0)
    # the m-patches are the 2x2 windows of the 3x4 grid, the l-patches its two halves
    assert M_PATCHES[0] == (0, 1, 4, 5) and M_PATCHES[-1] == (6, 7, 10, 11)
    assert L_PATCHES == ((0, 1, 4, 5, 8, 9), (2, 3, 6, 7, 10, 11))


def test_grid_bounds_tile_the_map() -> None:
    assert grid_bounds(30, 3) == [0, 10, 20, 30] and grid_bounds(40, 4) == [0, 10, 20, 30, 40]
    assert grid_bounds(15, 3) == [0, 5, 10, 15] and grid_bounds(18, 4) == [0, 4, 9, 13, 18]


@pytest.mark.parametrize("map_size", [(6, 8), (10, 14), (7, 9)], ids=["reference", "other", "odd"])
def test_region_zero_is_the_eval_descriptor(map_size: tuple[int, int]) -> None:
    layer = _small().eval()
    features = torch.randn(2, 16, *map_size, dtype=torch.float64)
    with torch.no_grad():
        regions = normalise_vlad(layer.region_vlads(features))
        plain = normalise_vlad(layer(features))
    torch.testing.assert_close(regions[:, 0], plain, rtol=0, atol=1e-12)


def test_region_zero_is_the_eval_descriptor_at_the_paper_size() -> None:
    torch.manual_seed(1)
    layer = ClusVPR().eval()  # 512 channels, K 64, 8 groups, 30x40, float32
    features = torch.randn(2, 512, 30, 40)
    with torch.no_grad():
        regions = normalise_vlad(layer.region_vlads(features))
        plain = normalise_vlad(layer(features))
    assert regions.shape == (2, 21, 8192)
    assert float((regions[:, 0] - plain).abs().max()) <= 1e-6


def test_eval_resizes_other_maps_as_torchvision_did() -> None:
    # methods.md C-12: torchvision Resize on a tensor, bilinear, antialias off.
    from torchvision.transforms import InterpolationMode, Resize

    layer = _small().eval()
    features = torch.randn(1, 16, 11, 13, dtype=torch.float64)
    down = Resize((6, 8), InterpolationMode.BILINEAR, antialias=False)
    up = Resize((11, 13), InterpolationMode.BILINEAR, antialias=False)
    with torch.no_grad():
        expected = up(layer.vit_layer(down(features)))
        torch.testing.assert_close(layer.run_blocks(features), expected, rtol=0, atol=1e-13)
        p = layer.GeM_pool.p.view(1, 1, 6, 8)
        torch.testing.assert_close(layer.exponent(11, 13), up(p).flatten(), rtol=0, atol=1e-13)
        assert layer.exponent(6, 8) is layer.GeM_pool.p


def test_training_runs_the_blocks_on_the_map_as_it_is() -> None:
    layer = _small().train()
    features = torch.randn(1, 16, 10, 12, dtype=torch.float64)
    blocked = layer.run_blocks(features)
    assert blocked.shape == features.shape
    with pytest.raises(ConfigError, match=r"cannot train on a 9x12 feature map"):
        layer.run_blocks(torch.randn(1, 16, 9, 12, dtype=torch.float64))


def _forward_backward(module: torch.nn.Module, inputs: torch.Tensor, regions: bool) -> None:
    module.zero_grad()
    inputs = inputs.clone().requires_grad_(True)
    kept = inputs.detach().clone()
    out = module(inputs, regions=True) if regions else module(inputs)
    probe = torch.randn(out.shape, generator=torch.Generator().manual_seed(3))
    (out * probe).sum().backward()
    assert torch.isfinite(out).all()
    assert inputs.grad is not None and torch.isfinite(inputs.grad).all()
    assert inputs.grad.abs().sum() > 0
    torch.testing.assert_close(inputs.detach(), kept, rtol=0, atol=0)  # never changed in place


class _Aggregate(torch.nn.Module):
    """The aggregator as the model uses it: descriptor, or the 21 region descriptors."""

    def __init__(self, layer: ClusVPR) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, features: torch.Tensor, regions: bool = False) -> torch.Tensor:
        vlad = self.layer.region_vlads(features) if regions else self.layer(features)
        return normalise_vlad(vlad)


@pytest.fixture(scope="module")
def paper_aggregator() -> _Aggregate:
    torch.manual_seed(2)
    return _Aggregate(ClusVPR())


@pytest.mark.parametrize("batch", [1, 2])
def test_training_forward_backward_at_480x640(paper_aggregator: _Aggregate, batch: int) -> None:
    paper_aggregator.train()
    _forward_backward(paper_aggregator, torch.randn(batch, 512, 30, 40), regions=True)
    p_grad = paper_aggregator.layer.GeM_pool.p.grad
    assert p_grad is not None and p_grad.abs().sum() > 0
    for name, param in paper_aggregator.named_parameters():
        assert ("global_bn" in name) == (not param.requires_grad), name


def test_tokyo_query_forward_backward(paper_aggregator: _Aggregate) -> None:
    # A Tokyo 24/7 query resized to shorter side 640 (640x853) gives VGG16 a 40x53 map:
    # evaluated through the resize path, batch 1 (methods.md 5.9 items 3-4).
    paper_aggregator.eval()
    _forward_backward(paper_aggregator, torch.randn(1, 512, 40, 53), regions=False)
    _forward_backward(paper_aggregator, torch.randn(1, 512, 40, 53), regions=True)


@pytest.mark.parametrize("batch", [1, 3])
def test_quick_model_forward_backward(batch: int) -> None:
    model = _quick_model()
    images = torch.randn(batch, 3, 96, 128)
    model.train()
    _forward_backward(model, images, regions=True)
    _forward_backward(model, images, regions=False)
    model.eval()
    _forward_backward(model, torch.randn(batch, 3, 120, 160), regions=False)  # resize path
    with torch.no_grad():
        plain, regions = model(images), model(images, regions=True)
    assert regions.shape == (batch, 21, model.descriptor_dim)
    assert float((regions[:, 0] - plain).abs().max()) <= 1e-6


def test_batch_of_one_equals_its_row_in_a_batch() -> None:
    model = _quick_model().eval()
    images = torch.randn(3, 3, 96, 128)
    with torch.no_grad():
        together = model(images)
        alone = torch.cat([model(images[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(together, alone, rtol=1e-4, atol=1e-6)
