"""DaCo's five self-supervised losses, on ``domain-views`` batches (``views [B, V, D]``).

Each loss declares ``n_views`` and :attr:`view_sources`: which image (the original or its
generated translation), which of that image's independent augmentations, which output of the
model (the projection ``g`` or the backbone feature) and which encoder (the trained one or
MoCo's momentum copy) each view is. The ``daco-views`` trainer reads them; one forward pass
serves every view with the same image, augmentation and encoder.

Definitions follow DaCo's ``model.py`` at 451e13d (line numbers below), checked against
``../shared/oracles/daco_losses.npz`` (oracles README section 7):

* :func:`nt_xent` (``SimCLRLoss``, model.py:28-48): over ``Z = [P; P']`` (2B rows), row i's
  loss is ``-log(exp(z_i.z_i+/t) / sum_{j != i} exp(z_i.z_j/t))``; the mean over 2B rows.
* ``daco`` (``DaCoLoss``, model.py:134-145): ``S(o1,o2) + S(g1,g2) + lamda (S(o1,g1) +
  S(o1,g2))``; o1 is in both cross terms (methods.md B.7 item 3, kept).
* ``simsiam`` (model.py:123-131): ``-0.5 <p1, sg f2> - 0.5 <p2, sg f1>``, batch means.
* ``moco`` (model.py:51-72): InfoNCE of the query against its key and a queue of ``negs``
  keys; :meth:`MoCoLoss.enqueue` pushes a batch of keys in and the oldest out.
* ``moco`` and ``npid`` live in :mod:`.memory_losses` (re-exported here).
* ``npid`` (model.py:75-120): NCE against a memory bank of every item, ``negs`` uniform
  negatives per row with the item itself in column 0, the constant ``z`` estimated on the
  first batch; :meth:`NPIDLoss.enqueue` moves the item's bank row halfway to the new
  projection.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from vpr_bench import bounded
from vpr_bench.errors import ConfigError
from vpr_bench_daco.memory_losses import MoCoConfig, MoCoLoss, NPIDConfig, NPIDLoss
from vpr_bench_daco.views import ViewSource, check_positive, check_views

__all__ = [
    "DaCoLoss",
    "DaCoLossConfig",
    "MoCoConfig",
    "MoCoLoss",
    "NPIDConfig",
    "NPIDLoss",
    "SimCLRConfig",
    "SimCLRLoss",
    "SimSiamConfig",
    "SimSiamLoss",
    "ViewSource",
    "nt_xent",
]


def nt_xent(proj_1: torch.Tensor, proj_2: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent of two ``[B, D]`` batches of unit vectors (SimCLRLoss, DaCo model.py:33-48).

    The denominator of each of the 2B rows sums every other row, its positive included.
    """
    batch = proj_1.shape[0]
    out = torch.cat([proj_1, proj_2], dim=0)
    sim = torch.exp(out @ out.T / temperature)
    off_diagonal = ~torch.eye(2 * batch, dtype=torch.bool, device=sim.device)
    denominator = sim.masked_select(off_diagonal).view(2 * batch, -1).sum(dim=-1)
    positive = torch.exp((proj_1 * proj_2).sum(dim=-1) / temperature)
    positive = torch.cat([positive, positive], dim=0)
    return (-torch.log(positive / denominator)).mean()


@dataclass
class SimCLRConfig:
    """Options of ``simclr`` (``loss.*``).

    Attributes:
        temperature: Softmax temperature (DaCo main.py:102: 0.1).
    """

    temperature: float = bounded(0.1, gt=0)


class SimCLRLoss(nn.Module):
    """NT-Xent on two augmentations of the original image (views o1, o2)."""

    n_views = 2
    view_sources = (ViewSource("original", 0), ViewSource("original", 1))

    def __init__(self, cfg: SimCLRConfig) -> None:
        super().__init__()
        check_positive(cfg.temperature, "loss.temperature")
        self.temperature = cfg.temperature

    def forward(self, views: torch.Tensor) -> torch.Tensor:
        """The loss of ``views [B, 2, D]``."""
        views = check_views(views, self.n_views, "simclr")
        return nt_xent(views[:, 0], views[:, 1], self.temperature)


@dataclass
class DaCoLossConfig:
    """Options of ``daco`` (``loss.*``).

    Attributes:
        temperature: Softmax temperature (DaCo main.py:102: 0.1).
        lamda: Weight of the cross-domain ("soft constraint") terms (main.py:108: 0.8).
    """

    temperature: float = bounded(0.1, gt=0)
    lamda: float = bounded(0.8, ge=0)


class DaCoLoss(nn.Module):
    """``S(o1,o2) + S(g1,g2) + lamda (S(o1,g1) + S(o1,g2))`` over views o1, o2, g1, g2."""

    n_views = 4
    view_sources = (
        ViewSource("original", 0),
        ViewSource("original", 1),
        ViewSource("generated", 0),
        ViewSource("generated", 1),
    )

    def __init__(self, cfg: DaCoLossConfig) -> None:
        super().__init__()
        check_positive(cfg.temperature, "loss.temperature")
        if cfg.lamda < 0:
            raise ConfigError(f"loss.lamda must be >= 0, got {cfg.lamda}.")
        self.temperature = cfg.temperature
        self.lamda = cfg.lamda

    def forward(self, views: torch.Tensor) -> torch.Tensor:
        """The loss of ``views [B, 4, D]`` (o1, o2, g1, g2)."""
        views = check_views(views, self.n_views, "daco")
        o1, o2, g1, g2 = views.unbind(dim=1)
        within = nt_xent(o1, o2, self.temperature) + nt_xent(g1, g2, self.temperature)
        cross = nt_xent(o1, g1, self.temperature) + nt_xent(o1, g2, self.temperature)
        return within + self.lamda * cross


@dataclass
class SimSiamConfig:
    """Options of ``simsiam`` (``loss.*``): none; SimSiamLoss has no parameters.

    Attributes:
        symmetric: Both halves of the symmetric loss (always True, as model.py:127-131).
    """

    symmetric: bool = True


class SimSiamLoss(nn.Module):
    """``-0.5 <p1, sg f2> - 0.5 <p2, sg f1>`` over views f1, f2, p1, p2."""

    n_views = 4
    view_sources = (
        ViewSource("original", 0, "feature"),
        ViewSource("original", 1, "feature"),
        ViewSource("original", 0, "proj"),
        ViewSource("original", 1, "proj"),
    )

    def __init__(self, cfg: SimSiamConfig) -> None:
        super().__init__()
        if not cfg.symmetric:
            raise ConfigError("loss.symmetric must stay True: DaCo's SimSiam is symmetric.")

    def forward(self, views: torch.Tensor) -> torch.Tensor:
        """The loss of ``views [B, 4, D]`` (f1, f2, p1, p2); the features get no gradient."""
        views = check_views(views, self.n_views, "simsiam")
        f1, f2, p1, p2 = views.unbind(dim=1)
        sim_1 = -(p1 * f2.detach()).sum(dim=-1).mean()
        sim_2 = -(p2 * f1.detach()).sum(dim=-1).mean()
        return 0.5 * sim_1 + 0.5 * sim_2
