"""DISAM's latent-code losses (methods.md A.2.3-A.2.8; DISAM ``disam_model.py:546-723``).

The loss sees the four latent codes of one training step (batch kind ``domain-images``):
``enc_a = E_a(A)``, ``enc_b = E_b(B)``, ``rec_a = E_b(G_b(enc_a))`` and
``rec_b = E_a(G_a(enc_b))``, each ``[B, C, H, W]`` (B = 1 in the reference). ``.d`` below
is a stop-gradient.

* distances: ``dp_A = MSE(rec_a, enc_a.d)``, ``dn_A = MSE(rec_a, enc_b.d)`` and the mirror
  ``dp_B = MSE(rec_b, enc_b.d)``, ``dn_B = MSE(rec_b, enc_a.d)``;
* adaptive triplet: ``max(0, 1 - dn / (margin exp(-adapt dp) + dp))`` for A and B;
* cosine distance ``c_A = 1 - cos(rec_a, enc_a)`` (``mcos`` with ``mean_cos``), *not*
  detached;
* latent loss ``dp_A + dp_B``; with ``train_using_cos`` ``c_A + c_B``; with also
  ``cos_latent_with_l2`` ``(c_A + dp_A) + (c_B + dp_B)``;
* Grad-SAM (only when ``lambda_sam > 0``): ``sam_A = MSE(SAM(enc_a | rec_a), SAM(rec_a |
  enc_a).d)``, the negative ``MSE(SAM(enc_a | rec_b), SAM(rec_b | enc_a).d)`` and their
  adaptive triplet with ``margin_sam`` and ``adapt_sam`` (its weight is not ramped);
* total ``ramp * (lambda_triplet * triplet + lambda_latent * latent + lambda_sam * sam) +
  lambda_sam_triplet * sam_triplet``; the trainer sets ``ramp`` (A.2.8: epoch / total
  epochs, 1 in a fresh run's first epoch).

With B > 1 every term is computed per sample and averaged (B = 1 gives the reference's values).
The reference logs ``feature_cos`` after adding ``dp`` to it in place when
``cos_latent_with_l2`` is on; :meth:`DisamLoss.terms` reports that logged value too.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from vpr_bench import bounded, check_ranges
from vpr_bench_disam.metrics import mean_cos, plain_cos
from vpr_bench_disam.sam import sam_map

__all__ = ["DisamLoss", "DisamLossConfig", "adaptive_triplet", "latent_mse"]


@dataclass
class DisamLossConfig:
    """Options of the ``disam`` loss (the ``loss.*`` keys); defaults from ``options/*.py``.

    Attributes:
        margin: m of the latent adaptive triplet (``--margin`` 5).
        adapt: a of the latent adaptive triplet (``--adapt`` 2).
        margin_sam: m of the SAM adaptive triplet (``--margin_sam_triplet`` 0.1).
        adapt_sam: a of the SAM adaptive triplet (``--adapt_sam_triplet`` 1000).
        lambda_triplet: Weight of the latent triplet (1.0), ramped.
        lambda_latent: Weight of the latent loss (0.1), ramped.
        lambda_sam: Weight of the SAM loss (1000; 0 turns SAM and its triplet off: the coarse
            model), ramped.
        lambda_sam_triplet: Weight of the SAM triplet (1.0), not ramped.
        train_using_cos: The latent loss is the cosine distance (``--train_using_cos``).
        mean_cos: Cosines are channel-mean cosines (``--mean_cos``).
        cos_latent_with_l2: With ``train_using_cos``, add the L2 distance to the cosine one
            (``--use_cos_latent_with_L2``).
    """

    margin: float = bounded(5.0, gt=0)
    adapt: float = bounded(2.0, ge=0)
    margin_sam: float = bounded(0.1, gt=0)
    adapt_sam: float = bounded(1000.0, ge=0)
    lambda_triplet: float = bounded(1.0, ge=0)
    lambda_latent: float = bounded(0.1, ge=0)
    lambda_sam: float = bounded(1000.0, ge=0)
    lambda_sam_triplet: float = bounded(1.0, ge=0)
    train_using_cos: bool = False
    mean_cos: bool = False
    cos_latent_with_l2: bool = False

    def __post_init__(self) -> None:
        check_ranges(self, prefix="loss.")


def latent_mse(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Per-sample mean squared difference of ``[B, ...]`` codes, ``[B]``."""
    return (u - v).pow(2).flatten(1).mean(dim=1)


def adaptive_triplet(
    positive: torch.Tensor, negative: torch.Tensor, margin: float, adapt: float
) -> torch.Tensor:
    """``max(0, 1 - dn / (margin exp(-adapt dp) + dp))`` elementwise (A.2.4)."""
    return torch.relu(1.0 - negative / (margin * torch.exp(-adapt * positive) + positive))


def _sam_distance(query: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``MSE(SAM(Q | R), SAM(R | Q).d)`` per sample, ``[B]``."""
    return latent_mse(sam_map(query, reference), sam_map(reference, query).detach())


class DisamLoss(nn.Module):
    """The ``disam`` loss: triplet, latent, SAM and SAM-triplet terms of four latent codes.

    Args:
        config: The loss options.

    Attributes:
        ramp: Multiplier of the ramped weights (triplet, latent, SAM); the trainer sets it.
    """

    def __init__(self, config: DisamLossConfig | None = None) -> None:
        super().__init__()
        self.config = config or DisamLossConfig()
        self.ramp = 1.0

    def terms(
        self,
        enc_a: torch.Tensor,
        enc_b: torch.Tensor,
        rec_a: torch.Tensor,
        rec_b: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        """Every term of the reference's ``backward_G`` feature part, each a scalar.

        Keys: ``dp_a, dn_a, dp_b, dn_b`` (latent MSEs), ``triplet_a/b``, ``feature_distance_a/b``
        (= dp), ``cos_a/b`` (the cosine distances), ``feature_cos_a/b`` (the logged value:
        ``cos + dp`` with ``cos_latent_with_l2``), ``latent`` (the latent loss) and, when
        ``lambda_sam > 0``, ``sam_a/b``, ``sam_neg_a/b`` and ``sam_triplet_a/b``.
        """
        cfg = self.config
        dp_a = latent_mse(rec_a, enc_a.detach())
        dn_a = latent_mse(rec_a, enc_b.detach())
        dp_b = latent_mse(rec_b, enc_b.detach())
        dn_b = latent_mse(rec_b, enc_a.detach())
        similarity = mean_cos if cfg.mean_cos else plain_cos
        cos_a = 1.0 - similarity(rec_a, enc_a)
        cos_b = 1.0 - similarity(rec_b, enc_b)
        with_l2 = cfg.train_using_cos and cfg.cos_latent_with_l2
        logged_a = cos_a + dp_a if with_l2 else cos_a
        logged_b = cos_b + dp_b if with_l2 else cos_b
        latent = logged_a + logged_b if cfg.train_using_cos else dp_a + dp_b
        out = {
            "dp_a": dp_a,
            "dn_a": dn_a,
            "dp_b": dp_b,
            "dn_b": dn_b,
            "triplet_a": adaptive_triplet(dp_a, dn_a, cfg.margin, cfg.adapt),
            "triplet_b": adaptive_triplet(dp_b, dn_b, cfg.margin, cfg.adapt),
            "feature_distance_a": dp_a,
            "feature_distance_b": dp_b,
            "cos_a": cos_a,
            "cos_b": cos_b,
            "feature_cos_a": logged_a,
            "feature_cos_b": logged_b,
            "latent": latent,
        }
        if cfg.lambda_sam > 0:
            sam_a = _sam_distance(enc_a, rec_a)
            sam_b = _sam_distance(enc_b, rec_b)
            sam_neg_a = _sam_distance(enc_a, rec_b)
            sam_neg_b = _sam_distance(enc_b, rec_a)
            out |= {
                "sam_a": sam_a,
                "sam_b": sam_b,
                "sam_neg_a": sam_neg_a,
                "sam_neg_b": sam_neg_b,
                "sam_triplet_a": adaptive_triplet(sam_a, sam_neg_a, cfg.margin_sam, cfg.adapt_sam),
                "sam_triplet_b": adaptive_triplet(sam_b, sam_neg_b, cfg.margin_sam, cfg.adapt_sam),
            }
        return {key: value.mean() for key, value in out.items()}

    def combine(self, terms: dict[str, torch.Tensor]) -> torch.Tensor:
        """The weighted sum of :meth:`terms` (A.2.8 without the GAN and cycle parts)."""
        cfg = self.config
        ramped = cfg.lambda_triplet * (terms["triplet_a"] + terms["triplet_b"])
        ramped = ramped + cfg.lambda_latent * terms["latent"]
        total = self.ramp * ramped
        if cfg.lambda_sam > 0:
            total = total + self.ramp * cfg.lambda_sam * (terms["sam_a"] + terms["sam_b"])
            if cfg.lambda_sam_triplet > 0:
                sam_triplet = terms["sam_triplet_a"] + terms["sam_triplet_b"]
                total = total + cfg.lambda_sam_triplet * sam_triplet
        return total

    def forward(
        self,
        enc_a: torch.Tensor,
        enc_b: torch.Tensor,
        rec_a: torch.Tensor,
        rec_b: torch.Tensor,
    ) -> torch.Tensor:
        """The scalar feature loss of one ``domain-images`` step's four latent codes."""
        return self.combine(self.terms(enc_a, enc_b, rec_a, rec_b))
