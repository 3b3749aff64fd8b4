"""SFRS's nine region descriptors against OpenIBL's ``EmbedRegionNet`` (oracle case ``region``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from vpr_bench.errors import ConfigError
from vpr_bench_netvlad import REGION_COUNT, REGION_NAMES, region_descriptors, region_vlads
from vpr_bench_netvlad.config import NetVLADConfig
from vpr_bench_netvlad.layer import NetVLAD, vlad_to_descriptor
from vpr_bench_netvlad.model import NetVLADModel, build_netvlad

RTOL, ATOL = 1e-8, 1e-9  # float64 tolerances of the oracle README


def _case(path: Path, case: str) -> dict[str, np.ndarray]:
    with np.load(path) as npz:
        return {k.split("__", 1)[1]: npz[k] for k in npz.files if k.startswith(f"{case}__")}


def _close(actual: torch.Tensor, expected: np.ndarray, dtype: torch.dtype) -> None:
    value = actual.detach().cpu().double().numpy()
    if dtype == torch.float64:
        np.testing.assert_allclose(value, expected, rtol=RTOL, atol=ATOL)
    else:  # the README's float32 limit: atol = 2e-5 * max(1, max |ref|)
        atol = 2e-5 * max(1.0, float(np.abs(expected).max()))
        np.testing.assert_allclose(value, expected, rtol=0, atol=atol)


def _region_layer(oracles_dir: Path, dtype: torch.dtype) -> tuple[NetVLAD, dict[str, np.ndarray]]:
    data = _case(oracles_dir / "netvlad_openibl.npz", "region")
    k, d = data["clsts"].shape
    layer = NetVLAD(k, d).to(dtype)
    layer.init_from_clusters(data["clsts"], data["traindescs"])
    return layer, data


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
def test_openibl_region_oracle(oracles_dir: Path, dtype: torch.dtype) -> None:
    layer, data = _region_layer(oracles_dir, dtype)
    _close(torch.tensor(layer.alpha, dtype=torch.float64), data["alpha"], torch.float64)
    _close(layer.conv.weight[:, :, 0, 0], data["conv_weight"], dtype)
    t, p = data["score"].shape[:2]  # T tuples of [anchor, pair_1 .. pair_P]
    x = torch.from_numpy(data["x"]).to(dtype).requires_grad_(True)
    desc = region_descriptors(x, layer)  # [T(1+P), 9, K*D]
    assert desc.shape == (t * (1 + p), REGION_COUNT, layer.output_dim)
    per_tuple = desc.view(t, 1 + p, REGION_COUNT, -1)
    vlad_a, vlad_b = per_tuple[:, :1], per_tuple[:, 1:]
    score = torch.einsum("tar,tpbr->tpab", vlad_a[:, 0], vlad_b)  # <R_a(anchor), R_b(pair)>
    _close(vlad_a, data["vlad_A"], dtype)
    _close(vlad_b, data["vlad_B"], dtype)
    _close(score, data["score"], dtype)
    (score * torch.from_numpy(data["grad_probe"]).to(dtype)).sum().backward()
    _close(x.grad, data["grad_x"], dtype)  # type: ignore[arg-type]
    with torch.no_grad():
        eval_desc = vlad_to_descriptor(layer(x))
    _close(eval_desc, data["desc_eval"], dtype)
    _close(desc[:, 0], data["desc_eval"], dtype)  # region 0 is the whole-image descriptor


def test_quarters_equal_separate_aggregation_on_an_uneven_map() -> None:
    # 15x20 (the tiny trunk at 120x160): quarters are rows 0-6 / 7-14, columns 0-9 / 10-19.
    torch.manual_seed(0)
    layer = NetVLAD(6, 10).double()
    layer.init_from_clusters(torch.randn(6, 10).double(), torch.randn(50, 10).double())
    features = torch.randn(3, 10, 15, 20, dtype=torch.float64)
    vlads = region_vlads(features, layer)
    assert vlads.shape == (3, 9, 6, 10)
    crops = [
        features[:, :, r, c]
        for r in (slice(0, 7), slice(7, 15))
        for c in (slice(0, 10), slice(10, 20))
    ]
    q0, q1, q2, q3 = (layer(crop) for crop in crops)
    expected = torch.stack(
        [q0 + q1 + q2 + q3, q0 + q1, q2 + q3, q0 + q2, q1 + q3, q0, q1, q2, q3], 1
    )
    torch.testing.assert_close(vlads, expected, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(vlads[:, 0], layer(features), rtol=1e-10, atol=1e-12)
    desc = region_descriptors(features, layer)
    assert desc.shape == (3, 9, 60)
    for r in range(REGION_COUNT):
        torch.testing.assert_close(desc[:, r], vlad_to_descriptor(expected[:, r]))
    assert REGION_NAMES[0] == "global" and REGION_NAMES[8] == "bottom-right"


def test_two_by_two_map_regions_are_single_locations() -> None:
    torch.manual_seed(1)
    layer = NetVLAD(4, 5).double()
    features = torch.randn(1, 5, 2, 2, dtype=torch.float64)
    vlads = region_vlads(features, layer)
    for q, (r, c) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        torch.testing.assert_close(vlads[:, 5 + q], layer(features[:, :, r : r + 1, c : c + 1]))


@pytest.fixture(scope="module")
def tiny_model() -> NetVLADModel:
    return build_netvlad(NetVLADConfig(backbone="tiny", num_clusters=8, pretrained=None, seed=3))


def test_model_regions_match_the_eval_descriptor(tiny_model: NetVLADModel) -> None:
    assert NetVLADModel.region_count == REGION_COUNT == 9
    model = tiny_model.eval()
    images = torch.randn(2, 3, 120, 160)  # tiny trunk: 15x20 map, uneven quarters
    with torch.no_grad():
        assert model.local_features(images).shape[2:] == (15, 20)
        regions = model(images, regions=True)
        plain = model(images)
    assert regions.shape == (2, 9, model.descriptor_dim) and regions.dtype == torch.float32
    torch.testing.assert_close(regions.norm(dim=2), torch.ones(2, 9))
    torch.testing.assert_close(regions[:, 0], plain, rtol=0, atol=1e-6)
    double = build_netvlad(NetVLADConfig(backbone="tiny", num_clusters=8, pretrained=None, seed=3))
    double = double.double().eval()
    with torch.no_grad():
        regions64 = double(images.double(), regions=True)
        plain64 = double(images.double())
    torch.testing.assert_close(regions64[:, 0], plain64, rtol=1e-10, atol=1e-12)


def test_model_regions_backward(tiny_model: NetVLADModel) -> None:
    model = tiny_model.train()
    model.zero_grad()
    images = torch.randn(2, 3, 64, 80)
    regions = model(images, regions=True)  # [2, 9, L]
    score = torch.einsum("ar,bsr->abs", regions[0], regions[1:])
    score.sum().backward()
    grads = {name: p.grad for name, p in model.named_parameters()}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
    assert grads["net_vlad.centroids"].abs().sum() > 0  # type: ignore[union-attr]
    assert grads["net_vlad.conv.weight"].abs().sum() > 0  # type: ignore[union-attr]
    assert grads["trunk.0.weight"].abs().sum() > 0  # type: ignore[union-attr]


def test_too_small_map_is_refused() -> None:
    layer = NetVLAD(4, 8)
    message = (
        "feature map 1x20 from 16x320 images cannot be split into 2x2 regions; "
        "use images at least 32 pixels high (trainer.height)."
    )
    with pytest.raises(ConfigError) as info:
        region_vlads(torch.randn(1, 8, 1, 20), layer, image_size=(16, 320))  # VGG16: stride 16
    assert str(info.value) == message
    with pytest.raises(ConfigError, match=r"^feature map 3x1 cannot be split .*trainer.width\)\.$"):
        region_descriptors(torch.randn(1, 8, 3, 1), layer)
    with pytest.raises(ValueError, match="local features"):
        region_vlads(torch.randn(1, 7, 4, 4), layer)


def test_model_refuses_too_small_images(tiny_model: NetVLADModel) -> None:
    images = torch.randn(1, 3, 8, 64)  # tiny trunk (stride 8): a 1x8 map
    with pytest.raises(ConfigError) as info:
        tiny_model(images, regions=True)
    text = str(info.value)
    assert "\n" not in text
    assert text == (
        "feature map 1x8 from 8x64 images cannot be split into 2x2 regions; "
        "use images at least 16 pixels high (trainer.height)."
    )
    with torch.no_grad():
        bigger = tiny_model.eval()(torch.randn(1, 3, 16, 64), regions=True)
    assert bigger.shape == (1, 9, tiny_model.descriptor_dim)
