"""The ``netvlad`` model's ``prepare`` step: k-means initialisation of the NetVLAD layer.

OpenIBL runs ``examples/cluster.py`` before training (methods.md 1.4): local descriptors of
500 training images, 100 per image, clustered into K centres with 100 k-means iterations; the
layer's assignment weights and centroids then come from those centres. The harness calls
:func:`prepare_netvlad` with the training images in a random order before the first epoch.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Iterator

import torch

from vpr_bench.errors import ConfigError
from vpr_bench_netvlad.centroids import compute_centroids
from vpr_bench_netvlad.config import NetVLADConfig
from vpr_bench_netvlad.model import NetVLADModel

__all__ = ["prepare_netvlad"]

log = logging.getLogger(__name__)


def _check_batch(batch: torch.Tensor) -> torch.Tensor:
    if not isinstance(batch, torch.Tensor) or batch.ndim != 4 or batch.shape[1] != 3:
        shape = tuple(batch.shape) if isinstance(batch, torch.Tensor) else type(batch).__name__
        raise ConfigError(
            f"NetVLAD prepare expects preprocessed image batches [B, 3, H, W], got {shape}."
        )
    return batch


def _take_images(
    batches: Iterator[torch.Tensor], limit: int, counter: list[int]
) -> Iterator[torch.Tensor]:
    """Yield batches until ``limit`` images were yielded (the last one cut); count them."""
    for batch in batches:
        batch = _check_batch(batch)[: limit - counter[0]]
        counter[0] += int(batch.shape[0])
        yield batch
        if counter[0] >= limit:
            return  # never pull (decode) a batch that is not used


def prepare_netvlad(
    model: NetVLADModel, config: NetVLADConfig, images: Iterable[torch.Tensor], seed: int
) -> None:
    """Initialise the NetVLAD layer from k-means centres of training descriptors.

    When ``config.centroids`` names a file, the layer was already initialised from it when the
    model was built, and nothing is done (logged). Otherwise up to ``config.init_images`` images
    are taken from ``images`` (streamed: never more than one batch is held), ``min(
    config.init_per_image, h * w)`` L2-normalised local descriptors are sampled per image,
    clustered into ``num_clusters`` centres (``config.init_iters`` iterations, seeded with
    ``seed``) and passed to :meth:`NetVLAD.init_from_clusters`.

    Args:
        model: The built ``netvlad`` model (on any device; descriptors are computed there).
        config: The model's options.
        images: Preprocessed ``[B, 3, H, W]`` batches of training images in random order.
        seed: The run seed (location sampling and k-means).

    Raises:
        ConfigError: No images, batches that are not ``[B, 3, H, W]``, or too few descriptors
            for ``num_clusters`` centres.
    """
    if config.centroids:
        log.info(
            "NetVLAD layer already initialised from %s at build time; k-means skipped.",
            config.centroids,
        )
        return
    stream = iter(images)
    first = next(stream, None)
    if first is None:
        raise ConfigError(
            "NetVLAD prepare: the training image iterable is empty; k-means initialisation "
            "needs training images (check the training dataset)."
        )
    first = _check_batch(first)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    with torch.no_grad():
        feats = model.trunk(first[:1].to(device))
    locations = int(feats.shape[-2] * feats.shape[-1])
    per_image = min(config.init_per_image, locations)
    counter = [0]
    batches = _take_images(itertools.chain([first], stream), config.init_images, counter)
    try:
        centroids, descriptors = compute_centroids(
            model.trunk,
            batches,
            config.num_clusters,
            per_image=per_image,
            seed=seed,
            device=device,
            niter=config.init_iters,
        )
    except ConfigError as exc:
        if counter[0] * per_image < config.num_clusters:
            raise ConfigError(
                f"NetVLAD prepare: {counter[0]} training image(s) x {per_image} descriptors "
                f"cannot make {config.num_clusters} clusters; use more training images "
                "(model.init_images), more descriptors per image (model.init_per_image, at most "
                f"the {locations} feature-map locations) or fewer clusters (model.num_clusters)."
            ) from exc
        raise
    finally:
        model.train(was_training)
    try:
        model.net_vlad.init_from_clusters(centroids, descriptors)
    except ValueError as exc:
        raise ConfigError(f"NetVLAD prepare: k-means initialisation failed: {exc}") from exc
    log.info(
        "NetVLAD initialised by k-means: %d centres from %d images x %d descriptors (alpha %.4g).",
        config.num_clusters,
        counter[0],
        per_image,
        model.net_vlad.alpha,
    )
