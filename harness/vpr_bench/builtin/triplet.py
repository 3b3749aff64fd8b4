"""The triplet margin loss as OpenIBL trains NetVLAD (methods.md Part A, section 2.1).

``L = mean_{b,j} max(0, ||a_b - p_b + eps|| - ||a_b - n_bj + eps|| + m)`` with plain (not
squared) L2 distances, ``eps = 1e-6`` added to the difference vector (PyTorch's
``triplet_margin_loss`` convention) and ``m = sqrt(0.1)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from vpr_bench.ranges import bounded

__all__ = ["TripletConfig", "TripletLoss"]


@dataclass
class TripletConfig:
    """Options of the triplet loss.

    Attributes:
        margin: The margin m on L2 distances (OpenIBL passes 0.1 and takes its square root).
        eps: Added to each difference vector before the norm.
    """

    margin: float = bounded(math.sqrt(0.1), ge=0)
    eps: float = bounded(1e-6, ge=0)


class TripletLoss(nn.Module):
    """Mean triplet margin loss over every (tuple, negative) pair.

    Forward takes ``anchors [B, D]``, ``positives [B, P, D]`` (only the first positive is used,
    as in OpenIBL) and ``negatives [B, N, D]`` and returns a scalar.
    """

    def __init__(self, config: TripletConfig | None = None) -> None:
        super().__init__()
        self.config = config or TripletConfig()

    def forward(
        self, anchors: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor
    ) -> torch.Tensor:
        """Compute the loss; shapes as in the class docstring."""
        if anchors.ndim != 2 or positives.ndim != 3 or negatives.ndim != 3:
            raise ValueError(
                "TripletLoss expects anchors [B, D], positives [B, P, D], negatives [B, N, D]; got "
                f"{tuple(anchors.shape)}, {tuple(positives.shape)}, {tuple(negatives.shape)}."
            )
        eps = self.config.eps
        d_pos = (anchors - positives[:, 0] + eps).norm(dim=-1)  # [B]
        d_neg = (anchors[:, None, :] - negatives + eps).norm(dim=-1)  # [B, N]
        loss: torch.Tensor = (d_pos[:, None] - d_neg + self.config.margin).clamp(min=0).mean()
        return loss
