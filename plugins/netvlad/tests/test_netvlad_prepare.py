"""The ``netvlad`` model's prepare step: k-means initialisation of the NetVLAD layer."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from vpr_bench.errors import ConfigError
from vpr_bench_netvlad.centroids import compute_centroids, save_centroids
from vpr_bench_netvlad.config import NetVLADConfig
from vpr_bench_netvlad.model import NetVLADModel, build_netvlad
from vpr_bench_netvlad.prepare import prepare_netvlad


def _config(**changes: object) -> NetVLADConfig:
    base: dict[str, object] = {
        "backbone": "tiny",
        "tiny_width": 2,
        "num_clusters": 4,
        "pretrained": None,
        "init_images": 5,
        "init_per_image": 100,
        "init_iters": 20,
    }
    base.update(changes)
    return NetVLADConfig(**base)  # type: ignore[arg-type]


def _batches(count: int, size: int = 32, batch: int = 2) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    return [torch.randn(batch, 3, size, size, generator=gen) * 50 for _ in range(count)]


def _strict(batches: list[torch.Tensor], allowed: int) -> Iterator[torch.Tensor]:
    """Yield ``batches`` and fail the test if more than ``allowed`` of them are pulled."""
    for i, batch in enumerate(batches):
        assert i < allowed, f"prepare pulled batch {i}, only {allowed} are needed"
        yield batch


def test_prepare_sets_the_kmeans_initialisation() -> None:
    cfg = _config()
    model = build_netvlad(cfg)
    random_weight = model.net_vlad.conv.weight.detach().clone()
    random_centroids = model.net_vlad.centroids.detach().clone()
    batches = _batches(4)  # 8 images; init_images = 5 -> 2 + 2 + 1, the 4th batch not pulled
    model.train()
    prepare_netvlad(model, cfg, _strict(batches, allowed=3), seed=7)
    assert model.training  # the mode is restored

    # 32x32 images -> 4x4 maps of the stride-8 tiny trunk: per_image = min(100, 16) = 16.
    first5 = [batches[0], batches[1], batches[2][:1]]
    cen, desc = compute_centroids(model.trunk, first5, 4, per_image=16, seed=7, niter=20)
    assert desc.shape == (5 * 16, 8)
    np.testing.assert_array_equal(model.net_vlad.centroids.detach().numpy(), cen)
    unit = cen.astype(np.float64) / np.linalg.norm(cen.astype(np.float64), axis=1, keepdims=True)
    sims = np.sort(unit @ desc.astype(np.float64).T, axis=0)
    alpha = -math.log(0.01) / float(np.mean(sims[-1] - sims[-2]))
    assert model.net_vlad.alpha == pytest.approx(alpha, rel=1e-6)
    weight = model.net_vlad.conv.weight.detach()[:, :, 0, 0].double().numpy()
    np.testing.assert_allclose(weight, alpha * unit, rtol=1e-5)
    assert not torch.allclose(model.net_vlad.conv.weight, random_weight)
    assert not torch.allclose(model.net_vlad.centroids, random_centroids)


def test_prepare_is_seeded() -> None:
    cfg = _config()
    first, second = build_netvlad(cfg), build_netvlad(cfg)
    prepare_netvlad(first, cfg, _batches(3), seed=3)
    prepare_netvlad(second, cfg, _batches(3), seed=3)
    torch.testing.assert_close(first.net_vlad.centroids, second.net_vlad.centroids)
    third = build_netvlad(cfg)
    prepare_netvlad(third, cfg, _batches(3), seed=4)
    assert not torch.equal(first.net_vlad.centroids, third.net_vlad.centroids)


def test_centroids_file_skips_kmeans(tmp_path: Path) -> None:
    probe = build_netvlad(_config())
    cen, desc = compute_centroids(probe.trunk, _batches(1), 4, per_image=8, seed=0, niter=5)
    path = tmp_path / "c.hdf5"
    save_centroids(path, cen, desc)
    cfg = _config(centroids=str(path))
    model = build_netvlad(cfg)
    before = {k: v.clone() for k, v in model.net_vlad.state_dict().items()}
    prepare_netvlad(model, cfg, _strict(_batches(2), allowed=0), seed=0)
    for key, value in model.net_vlad.state_dict().items():
        assert torch.equal(value, before[key]), key
    np.testing.assert_array_equal(model.net_vlad.centroids.detach().numpy(), cen)


def test_prepare_errors() -> None:
    cfg = _config()
    model: NetVLADModel = build_netvlad(cfg)
    with pytest.raises(ConfigError, match="training image iterable is empty"):
        prepare_netvlad(model, cfg, [], seed=0)
    with pytest.raises(ConfigError, match=r"image batches \[B, 3, H, W\], got \(2, 1, 8, 8\)"):
        prepare_netvlad(model, cfg, [torch.zeros(2, 1, 8, 8)], seed=0)
    # 16x16 images -> 2x2 maps: 1 image x 4 descriptors cannot make 8 clusters.
    few = _config(num_clusters=8, init_images=1)
    with pytest.raises(
        ConfigError, match=r"1 training image\(s\) x 4 descriptors cannot make 8 clusters"
    ):
        prepare_netvlad(build_netvlad(few), few, _batches(2, size=16), seed=0)


def test_a_random_trunk_gets_its_batchnorm_statistics_before_kmeans() -> None:
    """The tiny trunk's BatchNorm layers start at mean 0 / variance 1; prepare sets them to the
    statistics of the first training images (cumulative average), before clustering, and keeps
    the layers' momentum."""
    from torch import nn

    cfg = _config(init_images=6)
    model = build_netvlad(cfg)
    layers = [m for m in model.trunk.modules() if isinstance(m, nn.BatchNorm2d)]
    assert layers and all(float(m.running_mean.abs().sum()) == 0.0 for m in layers)
    batches = _batches(3)
    prepare_netvlad(model, cfg, iter(batches), seed=7)
    first = layers[0]
    x = torch.cat(batches)
    expected_mean = model.trunk[0](x).mean(dim=(0, 2, 3))  # the first conv's output, 6 images
    torch.testing.assert_close(first.running_mean, expected_mean.detach(), rtol=1e-4, atol=1e-3)
    assert all(m.momentum == 0.1 for m in layers)


def test_a_pretrained_trunk_keeps_its_statistics() -> None:
    from vpr_bench_netvlad.prepare import _needs_calibration

    model = build_netvlad(_config())
    assert _needs_calibration(model)
    model.trunk_pretrained = True
    assert not _needs_calibration(model)
