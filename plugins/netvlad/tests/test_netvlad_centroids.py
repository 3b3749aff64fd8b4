"""k-means centroid computation, the HDF5 file layout, and initialisation from it."""

from __future__ import annotations

import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from torch import nn

from vpr_bench.errors import ConfigError, DataError
from vpr_bench_netvlad.centroids import (
    choose_images,
    compute_centroids,
    kmeans_torch,
    load_centroids,
    save_centroids,
)
from vpr_bench_netvlad.config import NetVLADConfig
from vpr_bench_netvlad.model import build_netvlad


class _PixelTrunk(nn.Module):
    """Identity trunk: local descriptors are the pixels themselves (easy to check by hand)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _two_colour_batches() -> list[torch.Tensor]:
    # Images of 4x4 pixels that are either pure red-ish or pure blue-ish: two clear clusters.
    gen = torch.Generator().manual_seed(0)
    red = torch.tensor([1.0, 0.05, 0.0])[None, :, None, None]
    blue = torch.tensor([0.0, 0.05, 1.0])[None, :, None, None]
    noise = lambda: 0.01 * torch.randn(2, 3, 4, 4, generator=gen)  # noqa: E731
    return [red + noise(), blue + noise(), red + noise()]


def test_compute_centroids_finds_the_two_colours() -> None:
    centroids, descriptors = compute_centroids(
        _PixelTrunk(), _two_colour_batches(), num_clusters=2, per_image=5, seed=0
    )
    assert centroids.shape == (2, 3) and centroids.dtype == np.float32
    assert descriptors.shape == (6 * 5, 3)
    np.testing.assert_allclose(np.linalg.norm(descriptors, axis=1), 1.0, atol=1e-6)
    unit = centroids / np.linalg.norm(centroids, axis=1, keepdims=True)
    order = np.argsort(unit[:, 0])  # blue first, red second
    np.testing.assert_allclose(unit[order], [[0, 0.05, 1], [1, 0.05, 0]], atol=0.02)


def test_compute_centroids_is_seeded() -> None:
    a = compute_centroids(_PixelTrunk(), _two_colour_batches(), 2, per_image=5, seed=7)
    b = compute_centroids(_PixelTrunk(), _two_colour_batches(), 2, per_image=5, seed=7)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_without_faiss_the_torch_kmeans_finds_the_two_colours(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "faiss", None)  # `import faiss` raises ImportError
    centroids, _ = compute_centroids(_PixelTrunk(), _two_colour_batches(), 2, per_image=5, seed=0)
    assert "torch fallback" in caplog.text
    unit = centroids / np.linalg.norm(centroids, axis=1, keepdims=True)
    order = np.argsort(unit[:, 0])
    np.testing.assert_allclose(unit[order], [[0, 0.05, 1], [1, 0.05, 0]], atol=0.02)


def test_kmeans_torch_is_seeded_subsamples_and_fills_empty_clusters() -> None:
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((4, 8)).astype(np.float32) * 10
    points = (centres[rng.integers(0, 4, 2000)] + rng.standard_normal((2000, 8))).astype(np.float32)
    a = kmeans_torch(points, 4, niter=20, seed=1)
    np.testing.assert_array_equal(a, kmeans_torch(points, 4, niter=20, seed=1))
    assert a.shape == (4, 8) and a.dtype == np.float32 and np.isfinite(a).all()
    # Eight copies of one point, three clusters: two start empty-handed and are refilled.
    same = np.repeat(points[:1], 8, axis=0)
    filled = kmeans_torch(same, 3, niter=5, seed=0)
    assert np.isfinite(filled).all() and np.abs(filled - points[0]).max() < 1e-2


def test_compute_centroids_errors() -> None:
    with pytest.raises(ConfigError, match="16 locations, fewer than per_image=17"):
        compute_centroids(_PixelTrunk(), _two_colour_batches(), 2, per_image=17, seed=0)
    with pytest.raises(ConfigError, match="no image batches"):
        compute_centroids(_PixelTrunk(), [], 2, per_image=1, seed=0)
    with pytest.raises(ConfigError, match="cannot make 64 clusters"):
        compute_centroids(_PixelTrunk(), _two_colour_batches()[:1], 64, per_image=2, seed=0)


def test_choose_images_without_replacement() -> None:
    picked = choose_images(1000, 500, seed=43)
    assert len(picked) == 500 and len(set(picked.tolist())) == 500
    assert list(choose_images(3, 500)) == [0, 1, 2]
    with pytest.raises(DataError):
        choose_images(0)


def test_save_load_round_trip_uses_original_layout(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    cen, desc = rng.normal(size=(4, 8)), rng.normal(size=(20, 8))
    path = tmp_path / "sub" / "tiny_synth_4_desc_cen.hdf5"
    save_centroids(path, cen, desc)
    with h5py.File(path, "r") as h5:
        assert sorted(h5.keys()) == ["centroids", "descriptors"]
        assert h5["centroids"].shape == (4, 8) and h5["descriptors"].dtype == np.float32
    loaded_cen, loaded_desc = load_centroids(path)
    np.testing.assert_array_equal(loaded_cen, cen.astype(np.float32))
    np.testing.assert_array_equal(loaded_desc, desc.astype(np.float32))
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left


def test_load_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_centroids(tmp_path / "missing.hdf5")
    partial = tmp_path / "partial.hdf5"
    with h5py.File(partial, "w") as h5:
        h5.create_dataset("centroids", data=np.zeros((2, 3)))
    with pytest.raises(DataError, match=r"partial.hdf5 lacks dataset\(s\) descriptors"):
        load_centroids(partial)
    junk = tmp_path / "junk.hdf5"
    junk.write_text("no hdf5")
    with pytest.raises(DataError, match="not a readable HDF5"):
        load_centroids(junk)


def test_build_initialises_from_centroids_file(tmp_path: Path) -> None:
    model = build_netvlad(
        NetVLADConfig(backbone="tiny", num_clusters=4, tiny_width=2, pretrained=None)
    )
    images = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    cen, desc = compute_centroids(model.trunk, [images], num_clusters=4, per_image=10, seed=0)
    path = tmp_path / "c.hdf5"
    save_centroids(path, cen, desc)
    built = build_netvlad(
        NetVLADConfig(
            backbone="tiny", num_clusters=4, tiny_width=2, pretrained=None, centroids=str(path)
        )
    )
    np.testing.assert_allclose(built.net_vlad.centroids.detach().numpy(), cen)
    unit = cen / np.linalg.norm(cen, axis=1, keepdims=True)
    weight = built.net_vlad.conv.weight.detach().numpy()[:, :, 0, 0]
    np.testing.assert_allclose(weight, built.net_vlad.alpha * unit, rtol=1e-5)
    with pytest.raises(ConfigError, match=r"c.hdf5.*\(8, 8\)"):
        build_netvlad(
            NetVLADConfig(
                backbone="tiny", num_clusters=8, tiny_width=2, pretrained=None, centroids=str(path)
            )
        )
