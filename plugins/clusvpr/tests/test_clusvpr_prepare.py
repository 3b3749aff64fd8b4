"""The prepare step: k-means of the VLAD's own input, the group vectors (methods.md 5.7, C-6)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from vpr_bench.errors import ConfigError
from vpr_bench_clusvpr.config import ClusVPRConfig
from vpr_bench_clusvpr.model import ClusVPRModel, build_clusvpr
from vpr_bench_clusvpr.prepare import group_space_centroids, prepare_clusvpr

CONFIG = ClusVPRConfig(
    backbone="tiny",
    pretrained=None,
    num_clusters=6,
    groups=4,
    map_height=6,
    map_width=8,
    cwt_mlp_dim=16,
    init_images=5,
    init_per_image=20,
    init_iters=10,
)


def _batches(count: int = 3, batch: int = 2) -> Iterator[torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    for _ in range(count):
        yield torch.randn(batch, 3, 48, 64, generator=gen) * 50


def _model() -> ClusVPRModel:
    return build_clusvpr(CONFIG)


def test_centres_are_clustered_from_the_raw_group_vectors() -> None:
    model = _model()
    centres, points, used = group_space_centroids(
        model, _batches(), num_images=5, per_image=20, niter=10, seed=3
    )
    assert used == 5 and points.shape == (100, 32) and centres.shape == (6, 32)
    with torch.no_grad():
        images = torch.cat(list(_batches()))[:5]
        model.eval()
        groups = model.net_vlad.group_vectors(
            model.net_vlad.run_blocks(model.local_features(images))
        )
    every = groups.transpose(2, 3).flatten(1, 2).reshape(-1, 32).numpy()  # not L2-normalised
    assert not np.allclose(np.linalg.norm(points, axis=1), 1.0)
    for point in points[:10]:
        assert np.abs(every - point).max(axis=1).min() < 1e-6


def test_prepare_initialises_the_vlad_deterministically() -> None:
    first, second = _model(), _model()
    prepare_clusvpr(first, CONFIG, _batches(), seed=43)
    prepare_clusvpr(second, CONFIG, _batches(), seed=43)
    assert first.net_vlad.alpha == second.net_vlad.alpha and np.isfinite(first.net_vlad.alpha)
    torch.testing.assert_close(first.net_vlad.centroids, second.net_vlad.centroids, rtol=0, atol=0)
    weight = first.net_vlad.conv.weight[:, :, 0, 0]
    unit = torch.nn.functional.normalize(first.net_vlad.centroids, dim=1)
    torch.testing.assert_close(weight, first.net_vlad.alpha * unit)  # NetVLAD's rule
    assert first.training  # the mode is restored


def test_prepare_without_images_fails_in_one_line() -> None:
    with pytest.raises(ConfigError, match="the training image iterable is empty"):
        prepare_clusvpr(_model(), CONFIG, iter(()), seed=0)
    with pytest.raises(ConfigError, match=r"gave 4 group vectors, too few for 6 clusters"):
        group_space_centroids(_model(), _batches(1, 1), num_images=1, per_image=4, niter=2, seed=0)


def test_a_centroids_file_initialises_at_build_time(tmp_path: Path) -> None:
    from vpr_bench_netvlad.centroids import save_centroids

    gen = np.random.default_rng(0)
    centres, descs = gen.normal(size=(6, 32)), gen.normal(size=(50, 32))
    path = tmp_path / "clusvpr_group_centroids.hdf5"
    save_centroids(path, centres, descs)
    config = ClusVPRConfig(**{**CONFIG.__dict__, "centroids": str(path)})
    model = build_clusvpr(config)
    np.testing.assert_allclose(model.net_vlad.centroids.detach().numpy(), centres, rtol=1e-6)
    before = model.net_vlad.centroids.detach().clone()
    prepare_clusvpr(model, config, _batches(), seed=0)  # skipped: already initialised
    torch.testing.assert_close(model.net_vlad.centroids.detach(), before, rtol=0, atol=0)
    save_centroids(path, gen.normal(size=(6, 16)), gen.normal(size=(50, 16)))  # 512-d-like: no
    with pytest.raises(ConfigError, match=r"clsts has shape \(6, 16\), the layer needs \(6, 32\)"):
        build_clusvpr(config)


def _batch_norms(model: ClusVPRModel) -> list[torch.nn.BatchNorm2d]:
    return [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]


def test_prepare_sets_fresh_batch_norm_statistics_from_the_images() -> None:
    model = _model()
    local_bn = [block.local_bn for block in model.net_vlad.modules() if hasattr(block, "local_bn")]
    assert local_bn and all(int(bn.num_batches_tracked) == 0 for bn in local_bn)
    prepare_clusvpr(model, CONFIG, _batches(), seed=43)
    for layer in local_bn:
        assert int(layer.num_batches_tracked) > 0
        assert not torch.allclose(layer.running_var, torch.ones_like(layer.running_var))
    trunk_bn = [m for m in model.base_model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert trunk_bn and all(int(bn.num_batches_tracked) > 0 for bn in trunk_bn)
    # The statistics are the cumulative average over the calibration batches (init_images 5
    # asks for 5 images, so all three 2-image batches are held): the first trunk BatchNorm's
    # running mean is the mean of its per-batch input means.
    first = trunk_bn[0]
    inputs: list[torch.Tensor] = []
    handle = first.register_forward_hook(lambda _m, args, _out: inputs.append(args[0].detach()))
    try:
        model.eval()
        with torch.no_grad():
            for batch in _batches():
                model.local_features(batch)
    finally:
        handle.remove()
    means = torch.stack([x.mean(dim=(0, 2, 3)) for x in inputs])
    torch.testing.assert_close(first.running_mean, means.mean(dim=0), rtol=1e-5, atol=1e-5)


def test_prepare_keeps_statistics_a_trained_model_already_has() -> None:
    model = _model()
    for layer in _batch_norms(model):
        layer.running_mean.fill_(0.25)
        layer.num_batches_tracked.fill_(7)
    prepare_clusvpr(model, CONFIG, _batches(), seed=43)
    for layer in _batch_norms(model):
        assert int(layer.num_batches_tracked) == 7
        assert torch.all(layer.running_mean == 0.25)
