"""Losses of the two other built-in paradigms: multi-similarity (places) and cross-domain InfoNCE.

* Multi-similarity (Wang et al., CVPR 2019): on cosine similarities ``S`` of a batch of P places
  x K views, a positive pair (i, j) is kept when ``S_ij - eps < max_{neg} S_ik`` and a negative
  pair when ``S_ik + eps > min_{pos} S_ij``; then
  ``L_i = 1/alpha log(1 + sum_pos exp(-alpha (S_ij - lam)))``
  ``+ 1/beta log(1 + sum_neg exp(beta (S_ik - lam)))`` averaged over anchors. Defaults
  alpha=2, beta=50, lam=0.5, eps=0.1 as in the paper.
* Domain InfoNCE: rows of ``a`` and ``b`` are the same places in two domains; symmetric
  cross-entropy of ``a b^T / tau`` against the diagonal.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vpr_bench.ranges import bounded

__all__ = [
    "DomainInfoNCE",
    "DomainInfoNCEConfig",
    "MultiSimilarityConfig",
    "MultiSimilarityLoss",
]


@dataclass
class MultiSimilarityConfig:
    """Options of the multi-similarity loss.

    Attributes:
        alpha: Scale of positive pairs.
        beta: Scale of negative pairs.
        base: The similarity margin lambda.
        epsilon: Mining slack.
    """

    alpha: float = bounded(2.0, gt=0)
    beta: float = bounded(50.0, gt=0)
    base: float = bounded(0.5, ge=-1, le=1)
    epsilon: float = bounded(0.1, ge=0)


class MultiSimilarityLoss(nn.Module):
    """Multi-similarity loss with its pair mining; forward(embeddings [B, D], labels [B])."""

    def __init__(self, config: MultiSimilarityConfig | None = None) -> None:
        super().__init__()
        self.config = config or MultiSimilarityConfig()

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean loss over anchors that keep at least one pair (0 when none does)."""
        if embeddings.ndim != 2 or labels.shape != embeddings.shape[:1]:
            raise ValueError(
                "MultiSimilarityLoss expects embeddings [B, D] and labels [B]; got "
                f"{tuple(embeddings.shape)} and {tuple(labels.shape)}."
            )
        cfg = self.config
        sim = embeddings @ embeddings.T
        same = labels[:, None] == labels[None, :]
        eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
        pos_mask, neg_mask = same & ~eye, ~same
        inf = torch.tensor(float("inf"), device=sim.device)
        hardest_neg = torch.where(neg_mask, sim, -inf).amax(dim=1, keepdim=True)
        easiest_pos = torch.where(pos_mask, sim, inf).amin(dim=1, keepdim=True)
        keep_pos = pos_mask & (sim - cfg.epsilon < hardest_neg)
        keep_neg = neg_mask & (sim + cfg.epsilon > easiest_pos)
        zero = torch.zeros((), device=sim.device, dtype=sim.dtype)
        pos_term = torch.where(keep_pos, torch.exp(-cfg.alpha * (sim - cfg.base)), zero).sum(1)
        neg_term = torch.where(keep_neg, torch.exp(cfg.beta * (sim - cfg.base)), zero).sum(1)
        valid = keep_pos.any(1) & keep_neg.any(1)
        per_anchor = torch.log1p(pos_term) / cfg.alpha + torch.log1p(neg_term) / cfg.beta
        if not bool(valid.any()):
            return (embeddings * 0.0).sum()
        return per_anchor[valid].mean()


@dataclass
class DomainInfoNCEConfig:
    """Options of the cross-domain InfoNCE loss.

    Attributes:
        temperature: Softmax temperature tau.
    """

    temperature: float = bounded(0.1, gt=0)


class DomainInfoNCE(nn.Module):
    """Symmetric InfoNCE between two domains; forward(a [B, D], b [B, D]), row i of each paired."""

    def __init__(self, config: DomainInfoNCEConfig | None = None) -> None:
        super().__init__()
        self.config = config or DomainInfoNCEConfig()
        if self.config.temperature <= 0:
            raise ValueError(f"temperature must be positive, got {self.config.temperature}.")

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Mean of the a->b and b->a cross-entropies against the paired rows."""
        if a.shape != b.shape or a.ndim != 2:
            raise ValueError(
                f"DomainInfoNCE expects two [B, D] tensors; got {tuple(a.shape)}, {tuple(b.shape)}."
            )
        logits = (a @ b.T) / self.config.temperature
        target = torch.arange(len(a), device=a.device)
        return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
