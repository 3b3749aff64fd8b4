"""SARE losses as OpenIBL's baseline trainer computes them (methods.md Part A, section 3).

With ``d_p = ||a - p||^2`` and ``d_j = ||a - n_j||^2`` (squared Euclidean, no temperature):

* SARE-joint: ``mean_b -log(e^{-d_p} / (e^{-d_p} + sum_j e^{-d_j}))``, an (N+1)-way softmax
  cross-entropy with target 0;
* SARE-ind: ``mean_{b,j} -log(e^{-d_p} / (e^{-d_p} + e^{-d_j})) = mean log(1 + e^{d_p - d_j})``.

Only the first positive is used, as in OpenIBL.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["SAREConfig", "SAREIndLoss", "SAREJointLoss", "sare_distances"]


@dataclass
class SAREConfig:
    """Options of the SARE losses: none. OpenIBL's baseline SARE has no margin and no
    temperature (its ``temp=0.07`` argument is unused by these Euclidean losses)."""


def sare_distances(
    anchors: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Squared L2 distances ``d_p [B]`` (first positive) and ``d_n [B, N]``.

    Raises:
        ValueError: Shapes other than ``[B, D]``, ``[B, P>=1, D]``, ``[B, N>=1, D]``.
    """
    if (
        anchors.ndim != 2
        or positives.ndim != 3
        or negatives.ndim != 3
        or positives.shape[0] != anchors.shape[0]
        or negatives.shape[0] != anchors.shape[0]
        or positives.shape[2] != anchors.shape[1]
        or negatives.shape[2] != anchors.shape[1]
        or positives.shape[1] < 1
        or negatives.shape[1] < 1
    ):
        raise ValueError(
            "SARE losses expect anchors [B, D], positives [B, P>=1, D], negatives [B, N>=1, D]; "
            f"got {tuple(anchors.shape)}, {tuple(positives.shape)}, {tuple(negatives.shape)}."
        )
    d_pos = (anchors - positives[:, 0]).pow(2).sum(dim=-1)
    d_neg = (anchors[:, None, :] - negatives).pow(2).sum(dim=-1)
    return d_pos, d_neg


class SAREJointLoss(nn.Module):
    """SARE-joint: one softmax over the positive and all negatives per tuple, mean over tuples."""

    def __init__(self, config: SAREConfig | None = None) -> None:
        super().__init__()
        self.config = config or SAREConfig()

    def forward(
        self, anchors: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor
    ) -> torch.Tensor:
        """Loss of ``anchors [B, D]``, ``positives [B, P, D]``, ``negatives [B, N, D]``."""
        d_pos, d_neg = sare_distances(anchors, positives, negatives)
        logits = torch.cat([-d_pos[:, None], -d_neg], dim=1)
        return (torch.logsumexp(logits, dim=1) + d_pos).mean()


class SAREIndLoss(nn.Module):
    """SARE-ind: a two-way softmax per (positive, negative) pair, mean over all pairs."""

    def __init__(self, config: SAREConfig | None = None) -> None:
        super().__init__()
        self.config = config or SAREConfig()

    def forward(
        self, anchors: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor
    ) -> torch.Tensor:
        """Loss of ``anchors [B, D]``, ``positives [B, P, D]``, ``negatives [B, N, D]``."""
        d_pos, d_neg = sare_distances(anchors, positives, negatives)
        diff = d_pos[:, None] - d_neg
        return torch.logaddexp(torch.zeros_like(diff), diff).mean()
