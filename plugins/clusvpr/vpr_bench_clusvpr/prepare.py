"""The ``clusvpr`` model's ``prepare`` step: k-means in the group space of the VLAD.

ClusVPR initialises its VLAD like NetVLAD, from k-means centres (``train_clusvpr.py:109-115``),
but its clustering script clusters 512-d conv5_3 features while the layer's centres are 128-d
group vectors, so its file cannot be loaded (methods.md 5.7, C-6). Here the centres are computed
where the layer uses them: the training images pass the trunk and the CWTNet blocks (evaluation
mode), each location is L2-normalised and widened by ``linear1``, and the group vectors
``u_{g,i}`` (``expansion * D / G`` channels, not normalised, exactly what the VLAD sums) are
sampled, ``init_per_image`` per image without replacement, and clustered into K centres
(faiss when installed, else the NetVLAD plugin's seeded torch k-means). The centres and the
sampled vectors then set ``conv`` and ``centroids`` by the NetVLAD rule
(:meth:`~vpr_bench_clusvpr.aggregator.ClusVPR.init_from_clusters`).

BatchNorm layers that have never seen data (the tiny trunk's, and the CWT blocks' ``local_bn``
in every profile) first get the running statistics of up to 64 of the training images, as the
NetVLAD plugin does for its tiny trunk (:func:`vpr_bench_netvlad.prepare.calibrate_batch_norm`):
with their initial mean 0 and variance 1 the evaluation-mode k-means would cluster features that
training, in train mode, never sees. The original has no such step (its centres are not even in
this space, C-6); the plugin README lists it with the other deviations.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Iterator

import numpy as np
import torch
from torch import nn

from vpr_bench.errors import ConfigError
from vpr_bench_clusvpr.aggregator import resize_map
from vpr_bench_clusvpr.config import ClusVPRConfig
from vpr_bench_clusvpr.model import ClusVPRModel
from vpr_bench_netvlad.prepare import calibrate_batch_norm

__all__ = ["group_space_centroids", "prepare_clusvpr"]

log = logging.getLogger(__name__)

_CALIBRATION_IMAGES = 64
"""At most this many training images set the running statistics of fresh BatchNorm layers."""


class _BlockFeatures(nn.Module):
    """Trunk then CWT blocks, the path whose BatchNorm layers k-means depends on.

    Maps of another size than the reference pass the blocks at the reference size (as in
    evaluation), so any training image size calibrates the statistics training will update.
    """

    def __init__(self, model: ClusVPRModel) -> None:
        super().__init__()
        self.model = model

    def train(self, mode: bool = True) -> _BlockFeatures:
        """Train mode for BatchNorm only: dropout stays off, so the statistics are seeded-free."""
        super().train(mode)
        for layer in self.modules():
            if isinstance(layer, nn.modules.dropout._DropoutNd):
                layer.eval()
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.model.local_features(images)
        vlad = self.model.net_vlad
        if (int(features.shape[2]), int(features.shape[3])) != vlad.map_size:
            features = resize_map(features, vlad.map_size)
        return vlad.vit_layer(features)  # type: ignore[no-any-return]


def _fresh_batch_norms(model: ClusVPRModel) -> bool:
    """True when a BatchNorm layer on the trunk/blocks path has never updated its statistics."""
    path = [model.base_model, model.net_vlad.vit_layer]
    return any(
        isinstance(layer, nn.modules.batchnorm._BatchNorm)
        and layer.num_batches_tracked is not None
        and int(layer.num_batches_tracked) == 0
        for part in path
        for layer in part.modules()
    )


def _check_batch(batch: object) -> torch.Tensor:
    if not isinstance(batch, torch.Tensor) or batch.ndim != 4 or batch.shape[1] != 3:
        shape = tuple(batch.shape) if isinstance(batch, torch.Tensor) else type(batch).__name__
        raise ConfigError(
            f"ClusVPR prepare expects preprocessed image batches [B, 3, H, W], got {shape}."
        )
    return batch


def _first_images(batches: Iterable[torch.Tensor], limit: int) -> Iterator[torch.Tensor]:
    """Batches until ``limit`` images were yielded (the last one cut); never decodes more."""
    taken = 0
    for batch in batches:
        batch = _check_batch(batch)[: limit - taken]
        taken += int(batch.shape[0])
        yield batch
        if taken >= limit:
            return


def _kmeans(points: np.ndarray, clusters: int, niter: int, seed: int) -> np.ndarray:
    try:
        import faiss
    except ImportError:
        from vpr_bench_netvlad.centroids import kmeans_torch

        log.warning("faiss is not installed: k-means runs on the torch fallback (other centres).")
        return np.asarray(kmeans_torch(points, clusters, niter=niter, seed=seed), dtype=np.float32)
    kmeans = faiss.Kmeans(points.shape[1], clusters, niter=niter, seed=seed, verbose=False)
    kmeans.train(points)
    return np.asarray(kmeans.centroids, dtype=np.float32).reshape(clusters, -1)


def group_space_centroids(
    model: ClusVPRModel,
    images: Iterable[torch.Tensor],
    *,
    num_images: int,
    per_image: int,
    niter: int,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, int]:
    """k-means centres of the group vectors of up to ``num_images`` images.

    Args:
        model: The built model (its trunk, blocks and ``linear1`` are used, in eval mode).
        images: Preprocessed ``[B, 3, H, W]`` batches of training images, in random order.
        num_images: At most this many images are used.
        per_image: Group vectors sampled per image (capped at ``G * h * w``).
        niter: k-means iterations.
        seed: Seed of the sampling and of k-means.

    Returns:
        ``(centres [K, d], sampled vectors [M, d], images used)``, float32.

    Raises:
        ConfigError: No images, batches that are not images, or fewer vectors than clusters.
    """
    rng = np.random.default_rng(seed)
    device = next(model.parameters()).device
    clusters = model.net_vlad.num_clusters
    was_training = model.training
    model.eval()
    chunks: list[np.ndarray] = []
    try:
        with torch.no_grad():
            for batch in _first_images(images, num_images):
                features = model.local_features(batch.to(device))
                blocked = model.net_vlad.run_blocks(features)
                groups = model.net_vlad.group_vectors(blocked)  # [B, G, d, N]
                flat = groups.transpose(2, 3).flatten(1, 2).float().cpu().numpy()  # [B, G*N, d]
                take = min(per_image, flat.shape[1])
                for vectors in flat:
                    chunks.append(vectors[rng.choice(vectors.shape[0], size=take, replace=False)])
    finally:
        model.train(was_training)
    if not chunks:
        raise ConfigError(
            "ClusVPR prepare: the training image iterable is empty; k-means initialisation needs "
            "training images (check the training dataset)."
        )
    points = np.ascontiguousarray(np.concatenate(chunks), dtype=np.float32)
    if points.shape[0] < clusters:
        raise ConfigError(
            f"ClusVPR prepare: {len(chunks)} training image(s) gave {points.shape[0]} group "
            f"vectors, too few for {clusters} clusters; use more training images "
            "(model.init_images), more vectors per image (model.init_per_image) or fewer clusters "
            "(model.num_clusters)."
        )
    return _kmeans(points, clusters, niter, seed), points, len(chunks)


def prepare_clusvpr(
    model: ClusVPRModel, config: ClusVPRConfig, images: Iterable[torch.Tensor], seed: int
) -> None:
    """Initialise the VLAD from k-means in the group space (the ``clusvpr`` model's prepare).

    Nothing is done when ``config.centroids`` already initialised it at build time (logged).

    Args:
        model: The built model.
        config: Its options (``init_images``, ``init_per_image``, ``init_iters``).
        images: Preprocessed training image batches in random order (streamed).
        seed: The run seed.

    Raises:
        ConfigError: No or malformed images, too few vectors, or degenerate centres.
    """
    if config.centroids:
        log.info("ClusVPR VLAD already initialised from %s; k-means skipped.", config.centroids)
        return
    stream = iter(images)
    first = next(stream, None)
    if first is None:
        raise ConfigError(
            "ClusVPR prepare: the training image iterable is empty; k-means initialisation needs "
            "training images (check the training dataset)."
        )
    held = [_check_batch(first)]
    if _fresh_batch_norms(model):
        wanted = min(config.init_images, _CALIBRATION_IMAGES)
        while sum(int(batch.shape[0]) for batch in held) < wanted:
            more = next(stream, None)
            if more is None:
                break
            held.append(_check_batch(more))
        device = next(model.parameters()).device
        was_training = model.training
        try:
            seen = calibrate_batch_norm(_BlockFeatures(model), held, device)
        finally:
            model.train(was_training)
        log.info("BatchNorm statistics of the fresh trunk/CWT layers set from %d images", seen)
    centres, points, used = group_space_centroids(
        model,
        itertools.chain(held, stream),
        num_images=config.init_images,
        per_image=config.init_per_image,
        niter=config.init_iters,
        seed=seed,
    )
    try:
        model.net_vlad.init_from_clusters(centres, points)
    except ValueError as exc:
        raise ConfigError(f"ClusVPR prepare: k-means initialisation failed: {exc}") from exc
    log.info(
        "ClusVPR VLAD initialised by k-means in the %d-d group space: %d centres from %d images "
        "x %d vectors (alpha %.4g).",
        model.net_vlad.group_dim,
        model.net_vlad.num_clusters,
        used,
        points.shape[0] // max(used, 1),
        model.net_vlad.alpha,
    )
