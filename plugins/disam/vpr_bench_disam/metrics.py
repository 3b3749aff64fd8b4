"""DISAM's latent-code similarities, descriptors and retrieval (methods.md A.2, A.5).

The reference compares 256x64x64 codes one pair at a time (``disam_model.py:129-257``,
``test_robotcar.py`` ``find_dist_mat``). Here the same quantities come from one matrix product
of descriptors:

* ``cos``: the flattened code, L2-normalised, so ``q . d = cos(q, d)``;
* ``mean-cos``: each channel's spatial map L2-normalised and the whole divided by sqrt(C), so
  ``q . d = mcos(q, d) = (1/C) sum_c cos(q_c, d_c)`` and every descriptor has unit norm (an
  L2 ranking of these descriptors is the ``-mcos`` ranking).

``mcos`` is the per-channel cosine over spatial positions averaged over channels (A.7.3), as
torch's ``CosineSimilarity(dim=1, eps=1e-8)`` on a ``[C, H*W]`` view computes it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = [
    "COS_EPS",
    "DESCRIPTORS",
    "cos_descriptor",
    "descriptor",
    "distance_matrix",
    "first_argmin",
    "mean_cos",
    "meancos_descriptor",
    "plain_cos",
    "retrieval_distances",
]

COS_EPS = 1e-8
"""The eps of the reference's ``CosineSimilarity`` modules (``disam_model.py:40-41``)."""

DESCRIPTORS = ("mean-cos", "cos")
"""Descriptor kinds of the retrieval model (``model.descriptor``)."""


def plain_cos(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Cosine of the flattened ``[B, ...]`` codes, one value per batch row."""
    return F.cosine_similarity(u.flatten(1), v.flatten(1), dim=1, eps=COS_EPS)


def mean_cos(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``mcos`` of ``[B, C, H, W]`` codes: channel cosines over space, averaged over channels."""
    return F.cosine_similarity(u.flatten(2), v.flatten(2), dim=2, eps=COS_EPS).mean(dim=1)


def cos_descriptor(latent: torch.Tensor) -> torch.Tensor:
    """``[B, C, H, W] -> [B, C*H*W]``: the flattened code, L2-normalised."""
    return F.normalize(latent.flatten(1), p=2, dim=1, eps=COS_EPS)


def meancos_descriptor(latent: torch.Tensor) -> torch.Tensor:
    """``[B, C, H, W] -> [B, C*H*W]``: every channel map L2-normalised, divided by sqrt(C).

    The dot product of two such descriptors is their ``mcos``; a channel that is zero stays
    zero (its cosine counts 0, as the reference's eps-guarded cosine gives).
    """
    channels = latent.shape[1]
    per_channel = F.normalize(latent.flatten(2), p=2, dim=2, eps=COS_EPS)
    return per_channel.flatten(1) / math.sqrt(channels)


def descriptor(latent: torch.Tensor, kind: str) -> torch.Tensor:
    """The ``kind`` (:data:`DESCRIPTORS`) descriptor of ``[B, C, H, W]`` codes."""
    if kind == "mean-cos":
        return meancos_descriptor(latent)
    if kind == "cos":
        return cos_descriptor(latent)
    raise ValueError(f"descriptor kind {kind!r} is not one of {', '.join(DESCRIPTORS)}")


def retrieval_distances(queries: torch.Tensor, database: torch.Tensor, metric: str) -> torch.Tensor:
    """``image_retrieval``'s distance of every query to every database code, ``[Q, N]``.

    Args:
        queries: ``[Q, C, H, W]`` codes.
        database: ``[N, C, H, W]`` codes.
        metric: ``"l2"`` (MSE of the flattened codes, no ``--test_using_cos``), ``"cos"``
            (``-cos``, ``--test_using_cos``) or ``"mean-cos"`` (``-mcos``, with ``--mean_cos``).
    """
    if metric == "l2":
        q, d = queries.flatten(1), database.flatten(1)
        squared = (q * q).sum(1, keepdim=True) + (d * d).sum(1) - 2.0 * q @ d.T
        return squared.clamp_min(0.0) / q.shape[1]
    if metric in DESCRIPTORS:
        return -(descriptor(queries, metric) @ descriptor(database, metric).T)
    raise ValueError(f"metric {metric!r} is not one of l2, {', '.join(DESCRIPTORS)}")


def distance_matrix(queries: torch.Tensor, database: torch.Tensor, metric: str) -> torch.Tensor:
    """``find_dist_mat`` (RobotCar): ``1 - cos`` or ``1 - mcos``, oriented ``[N_db, Q]``."""
    if metric not in DESCRIPTORS:
        raise ValueError(f"metric {metric!r} is not one of {', '.join(DESCRIPTORS)}")
    return 1.0 - descriptor(database, metric) @ descriptor(queries, metric).T


def first_argmin(distances: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """The index of the first minimum along ``dim`` (the reference's strict ``<`` scan)."""
    order = torch.sort(distances, dim=dim, stable=True).indices
    return order.select(dim, 0)
