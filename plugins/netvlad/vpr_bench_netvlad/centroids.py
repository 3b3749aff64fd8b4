"""Cluster centres for NetVLAD initialisation (OpenIBL ``examples/cluster.py``, methods.md 1.4).

Sample ``per_image`` L2-normalised local descriptors (without replacement) from each image's
feature map, run k-means (faiss, seeded), and store the result in the original HDF5 layout:
datasets ``centroids`` [K, D] and ``descriptors`` [M, D] (float32).

faiss is a dependency of this plugin; where it is missing (a bare GPU machine with a preinstalled
torch, ``benchmarks/gpu``), a seeded Lloyd k-means in torch stands in and says so in the log.
It follows faiss's defaults (random initial centres, at most 256 points per centre, an empty
cluster takes over half of the largest) but not its random stream, so its centres differ.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vpr_bench.errors import ConfigError, DataError

__all__ = [
    "choose_images",
    "compute_centroids",
    "kmeans_torch",
    "load_centroids",
    "save_centroids",
]

log = logging.getLogger(__name__)


def choose_images(num_available: int, num_images: int = 500, seed: int = 43) -> np.ndarray:
    """Indices of ``min(num_images, num_available)`` images drawn without replacement, sorted."""
    if num_available < 1:
        raise DataError("Cannot sample images for clustering from an empty image list.")
    rng = np.random.default_rng(seed)
    count = min(num_images, num_available)
    return np.sort(rng.choice(num_available, size=count, replace=False))


def compute_centroids(
    model_trunk: nn.Module,
    batches: Iterable[torch.Tensor],
    num_clusters: int,
    per_image: int = 100,
    seed: int = 43,
    device: torch.device | str = "cpu",
    niter: int = 100,
) -> tuple[np.ndarray, np.ndarray]:
    """Run the trunk on image batches, sample local descriptors and cluster them.

    Args:
        model_trunk: ``[B, 3, H, W] -> [B, D, h, w]`` (run in eval mode, without gradients).
        batches: Preprocessed image batches; every image contributes ``per_image`` descriptors.
        num_clusters: K.
        per_image: Descriptors sampled per image without replacement (100 in the original).
        seed: Seed of the location sampling and of faiss k-means.
        device: Device the trunk runs on.
        niter: k-means iterations (100 in the original).

    Returns:
        ``(centroids [K, D], descriptors [M, D])`` as float32 arrays, descriptors L2-normalised.

    Raises:
        ConfigError: A feature map has fewer than ``per_image`` locations, or fewer descriptors
            than clusters were collected.
    """
    from tqdm import tqdm

    rng = np.random.default_rng(seed)
    was_training = model_trunk.training
    model_trunk.eval()
    chunks: list[np.ndarray] = []
    try:
        with torch.no_grad():
            for batch in tqdm(
                batches, desc="cluster descriptors", unit="batch", disable=None, leave=False
            ):
                feats = F.normalize(model_trunk(batch.to(device)), p=2, dim=1)
                flat = feats.flatten(2).transpose(1, 2).float().cpu().numpy()  # [B, N, D]
                if flat.shape[1] < per_image:
                    raise ConfigError(
                        f"compute_centroids: feature maps have {flat.shape[1]} locations, fewer "
                        f"than per_image={per_image}; lower per_image or use larger images."
                    )
                for image in flat:
                    pick = rng.choice(image.shape[0], size=per_image, replace=False)
                    chunks.append(image[pick])
    finally:
        model_trunk.train(was_training)
    if not chunks:
        raise ConfigError("compute_centroids: no image batches were given.")
    descriptors = np.ascontiguousarray(np.concatenate(chunks), dtype=np.float32)
    if descriptors.shape[0] < num_clusters:
        raise ConfigError(
            f"compute_centroids: {descriptors.shape[0]} descriptors cannot make {num_clusters} "
            "clusters; sample more images or more descriptors per image."
        )
    try:
        import faiss
    except ImportError:
        log.warning("faiss is not installed: k-means runs on the torch fallback (other centres).")
        centroids = kmeans_torch(descriptors, num_clusters, niter=niter, seed=seed)
    else:
        kmeans = faiss.Kmeans(
            descriptors.shape[1], num_clusters, niter=niter, seed=seed, verbose=False
        )
        kmeans.train(descriptors)
        centroids = np.asarray(kmeans.centroids, dtype=np.float32).reshape(num_clusters, -1)
    log.info(
        "k-means: %d clusters from %d descriptors of dim %d",
        num_clusters,
        descriptors.shape[0],
        descriptors.shape[1],
    )
    return centroids, descriptors


def kmeans_torch(
    points: np.ndarray, num_clusters: int, *, niter: int = 100, seed: int = 43
) -> np.ndarray:
    """Seeded Lloyd k-means on the CPU (the fallback when faiss is not installed).

    Like ``faiss.Kmeans`` with its defaults: at most 256 points per centre are used (a seeded
    subsample), the initial centres are distinct random points, and an empty cluster takes a
    slightly perturbed copy of the largest cluster's centre. Deterministic for a given seed.

    Args:
        points: ``[M, D]`` float32 points, ``M >= num_clusters``.
        num_clusters: K.
        niter: Lloyd iterations.
        seed: Seed of the subsample, the initial centres and the perturbations.

    Returns:
        ``[K, D]`` float32 centres.
    """
    gen = torch.Generator().manual_seed(seed)
    x = torch.from_numpy(np.ascontiguousarray(points, dtype=np.float32))
    if x.shape[0] > 256 * num_clusters:
        x = x[torch.randperm(x.shape[0], generator=gen)[: 256 * num_clusters]]
    centres = x[torch.randperm(x.shape[0], generator=gen)[:num_clusters]].clone()
    x_sq = (x * x).sum(1)
    for _ in range(niter):
        dist = x_sq[:, None] - 2.0 * (x @ centres.T) + (centres * centres).sum(1)[None, :]
        assign = dist.argmin(dim=1)
        counts = torch.bincount(assign, minlength=num_clusters)
        sums = torch.zeros_like(centres).index_add_(0, assign, x)
        filled = counts > 0
        centres[filled] = sums[filled] / counts[filled, None].to(x.dtype)
        for empty in torch.nonzero(~filled).flatten().tolist():
            big = int(torch.argmax(counts))
            noise = 1e-4 * torch.randn(centres.shape[1], generator=gen)
            centres[empty] = centres[big] + noise
            centres[big] = centres[big] - noise
            counts[big] = counts[big] // 2
            counts[empty] = counts[big]
    return centres.numpy().astype(np.float32)


def save_centroids(
    path: str | os.PathLike[str], centroids: np.ndarray, descriptors: np.ndarray
) -> None:
    """Write ``centroids`` [K, D] and ``descriptors`` [M, D] to an HDF5 file atomically."""
    import h5py

    centroids = np.asarray(centroids, dtype=np.float32)
    descriptors = np.asarray(descriptors, dtype=np.float32)
    if centroids.ndim != 2 or descriptors.ndim != 2 or centroids.shape[1] != descriptors.shape[1]:
        raise ValueError(
            f"save_centroids: need centroids [K, D] and descriptors [M, D] with the same D, got "
            f"{centroids.shape} and {descriptors.shape}."
        )
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with h5py.File(tmp, "w") as h5:
            h5.create_dataset("centroids", data=centroids)
            h5.create_dataset("descriptors", data=descriptors)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def load_centroids(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """Read ``(centroids [K, D], descriptors [M, D])`` from an OpenIBL-layout HDF5 file.

    Raises:
        DataError: The file is missing, unreadable, lacks a dataset or has inconsistent shapes.
    """
    import h5py

    file = Path(path)
    if not file.is_file():
        raise DataError(
            f"Centroids file {file} does not exist; compute it with "
            "vpr_bench_netvlad.centroids.compute_centroids or point to the original "
            "vgg16_pitts_64_desc_cen.hdf5."
        )
    try:
        with h5py.File(file, "r") as h5:
            missing = [name for name in ("centroids", "descriptors") if name not in h5]
            if missing:
                raise DataError(
                    f"Centroids file {file} lacks dataset(s) {', '.join(missing)}; expected "
                    "'centroids' [K, D] and 'descriptors' [M, D]."
                )
            centroids = np.asarray(h5["centroids"][()], dtype=np.float32)
            descriptors = np.asarray(h5["descriptors"][()], dtype=np.float32)
    except OSError as exc:
        raise DataError(f"Centroids file {file} is not a readable HDF5 file: {exc}") from exc
    if centroids.ndim != 2 or descriptors.ndim != 2 or centroids.shape[1] != descriptors.shape[1]:
        raise DataError(
            f"Centroids file {file}: 'centroids' {centroids.shape} and 'descriptors' "
            f"{descriptors.shape} must be [K, D] and [M, D] with the same D."
        )
    return centroids, descriptors
