"""The ``stml`` loss: the sharpened triplet marginal loss (methods.md Methods B, C.2).

``l(q, p, n) = max(0, d(q, p) + m - d(q, n) + m_pn - d(p, n))`` with Euclidean (not squared)
distances between the L2-normalised descriptors, the first positive of each tuple, ``m = 0.1``
and ``m_pn = 1.4`` (DEATT utils/custom_loss.py:124-152, TripletMarginLoss2 version 1). One
hinge over both terms; the batch loss is the mean over every (query, negative) pair, i.e. the
sum divided by the number of negatives (train.py:66-76).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from vpr_bench import bounded

__all__ = ["STMLConfig", "STMLLoss"]


@dataclass
class STMLConfig:
    """Options of the ``stml`` loss (``loss.*`` keys).

    Attributes:
        margin: m, the triplet margin (``--margin`` 0.1).
        pn_margin: m_pn, the positive-negative margin (``--tml2_pn_margin`` 1.4).
        eps: Added to each difference vector before its norm; 0 as in the original, whose
            distance is ``sqrt(sum((a - b) ** 2))`` (custom_loss.py:131-132).
    """

    margin: float = bounded(0.1, ge=0)
    pn_margin: float = bounded(1.4, ge=0)
    eps: float = bounded(0.0, ge=0)


class STMLLoss(nn.Module):
    """Mean sharpened triplet loss over every (tuple, negative) pair.

    Forward takes ``anchors [B, D]``, ``positives [B, P, D]`` (the first positive is used) and
    ``negatives [B, N, D]`` and returns a scalar.
    """

    def __init__(self, config: STMLConfig | None = None) -> None:
        super().__init__()
        self.config = config or STMLConfig()

    def forward(
        self, anchors: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor
    ) -> torch.Tensor:
        """Compute the loss; shapes as in the class docstring."""
        if anchors.ndim != 2 or positives.ndim != 3 or negatives.ndim != 3:
            raise ValueError(
                "STMLLoss expects anchors [B, D], positives [B, P, D], negatives [B, N, D]; got "
                f"{tuple(anchors.shape)}, {tuple(positives.shape)}, {tuple(negatives.shape)}."
            )
        cfg = self.config
        positive = positives[:, 0]
        d_qp = (anchors - positive + cfg.eps).norm(dim=-1)[:, None]  # [B, 1]
        d_qn = (anchors[:, None, :] - negatives + cfg.eps).norm(dim=-1)  # [B, N]
        d_pn = (positive[:, None, :] - negatives + cfg.eps).norm(dim=-1)  # [B, N]
        hinge = (d_qp + cfg.margin - d_qn + cfg.pn_margin - d_pn).clamp(min=0)
        loss: torch.Tensor = hinge.mean()
        return loss
