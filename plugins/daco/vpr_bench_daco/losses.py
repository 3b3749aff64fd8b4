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
* ``npid`` (model.py:75-120): NCE against a memory bank of every item, ``negs`` uniform
  negatives per row with the item itself in column 0, the constant ``z`` estimated on the
  first batch; :meth:`NPIDLoss.enqueue` moves the item's bank row halfway to the new
  projection.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from vpr_bench import bounded
from vpr_bench.errors import ConfigError

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


@dataclass(frozen=True)
class ViewSource:
    """What one view of a ``domain-views`` batch shows.

    Attributes:
        image: ``"original"`` or ``"generated"`` (the item's translation into the other domain).
        augmentation: Which independent augmentation of that image (0, 1, ...).
        output: ``"proj"`` (the normalised projection g(f(x))) or ``"feature"`` (normalised f(x)).
        encoder: ``"query"`` (the model being trained) or ``"key"`` (MoCo's momentum copy, no
            gradient).
    """

    image: Literal["original", "generated"]
    augmentation: int
    output: Literal["proj", "feature"] = "proj"
    encoder: Literal["query", "key"] = "query"


def _views(views: torch.Tensor, n_views: int, name: str) -> torch.Tensor:
    if views.ndim != 3 or views.shape[1] != n_views:
        raise ValueError(
            f"Loss {name} takes views [B, {n_views}, D], got {tuple(views.shape)}: the trainer "
            "must give it the views its view_sources list."
        )
    if views.shape[0] < 2:
        raise ValueError(f"Loss {name} needs at least 2 items per batch (in-batch negatives).")
    return views


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


def _positive(value: float, what: str) -> None:
    if not value > 0:
        raise ConfigError(f"{what} must be > 0, got {value}.")


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
        _positive(cfg.temperature, "loss.temperature")
        self.temperature = cfg.temperature

    def forward(self, views: torch.Tensor) -> torch.Tensor:
        """The loss of ``views [B, 2, D]``."""
        views = _views(views, self.n_views, "simclr")
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
        _positive(cfg.temperature, "loss.temperature")
        if cfg.lamda < 0:
            raise ConfigError(f"loss.lamda must be >= 0, got {cfg.lamda}.")
        self.temperature = cfg.temperature
        self.lamda = cfg.lamda

    def forward(self, views: torch.Tensor) -> torch.Tensor:
        """The loss of ``views [B, 4, D]`` (o1, o2, g1, g2)."""
        views = _views(views, self.n_views, "daco")
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
        views = _views(views, self.n_views, "simsiam")
        f1, f2, p1, p2 = views.unbind(dim=1)
        sim_1 = -(p1 * f2.detach()).sum(dim=-1).mean()
        sim_2 = -(p2 * f1.detach()).sum(dim=-1).mean()
        return 0.5 * sim_1 + 0.5 * sim_2


@dataclass
class MoCoConfig:
    """Options of ``moco`` (``loss.*``).

    Attributes:
        temperature: Softmax temperature (0.1).
        negs: Keys in the queue (``--negs`` 4096).
        dim: Width of the projections (DaCo 2048; ICMR 128); 0 takes the width of the first
            batch (the queue is drawn then).
        momentum: Key encoder momentum (README "Benchmarks": 0.999).
    """

    temperature: float = bounded(0.1, gt=0)
    negs: int = bounded(4096, ge=1)
    dim: int = bounded(0, ge=0)
    momentum: float = bounded(0.999, ge=0, lt=1)


class MoCoLoss(nn.Module):
    """InfoNCE of query q against its key k and the queue, over views q, k.

    Attributes:
        key_momentum: The trainer keeps a momentum copy of the model with this momentum and
            computes view k with it on a shuffled batch (shuffle-BN, main.py:40-43).
        queue: ``[negs, dim]`` keys of earlier batches (a buffer, checkpointed).
    """

    n_views = 2
    view_sources = (ViewSource("original", 0), ViewSource("original", 1, encoder="key"))
    queue: torch.Tensor

    def __init__(self, cfg: MoCoConfig) -> None:
        super().__init__()
        _positive(cfg.temperature, "loss.temperature")
        if cfg.negs < 1 or cfg.dim < 0:
            raise ConfigError(
                f"loss.negs must be >= 1 and loss.dim >= 0, got {cfg.negs}, {cfg.dim}."
            )
        if not 0.0 <= cfg.momentum < 1.0:
            raise ConfigError(f"loss.momentum must be in [0, 1), got {cfg.momentum}.")
        self.temperature = cfg.temperature
        self.key_momentum = cfg.momentum
        self.negs = cfg.negs
        # model.py:55: the queue starts as random unit vectors.
        self.register_buffer("queue", torch.empty(0, 0))
        if cfg.dim:
            self.queue = F.normalize(torch.randn(cfg.negs, cfg.dim), dim=-1)

    def forward(self, views: torch.Tensor) -> torch.Tensor:
        """The loss of ``views [B, 2, D]`` (q, k)."""
        views = _views(views, self.n_views, "moco")
        if self.queue.numel() == 0:
            self.queue = F.normalize(torch.randn(self.negs, views.shape[-1]), dim=-1).to(
                self.queue.device
            )
        if self.queue.shape[1] != views.shape[-1]:
            raise ConfigError(
                f"loss.dim is {self.queue.shape[1]} but the projections are {views.shape[-1]}-d; "
                "set loss.dim to model.proj_dim (or 0)."
            )
        query, key = views.unbind(dim=1)
        queue = self.queue.to(dtype=query.dtype, device=query.device, copy=True)
        score_pos = (query * key).sum(dim=-1, keepdim=True)
        score_neg = query @ queue.T
        logits = torch.cat([score_pos, score_neg], dim=-1) / self.temperature
        target = torch.zeros(query.shape[0], dtype=torch.long, device=query.device)
        return F.cross_entropy(logits, target)

    @torch.no_grad()
    def enqueue(self, key: torch.Tensor) -> None:
        """Push ``key [B, D]`` into the queue, dropping the B oldest (model.py:70-72)."""
        key = key.detach().to(self.queue)
        self.queue.copy_(torch.cat([self.queue, key], dim=0)[key.shape[0] :])


@dataclass
class NPIDConfig:
    """Options of ``npid`` (``loss.*``).

    Attributes:
        temperature: Softmax temperature (0.1).
        negs: Negatives drawn per row (``--negs`` 4096).
        dim: Width of the projections (DaCo 2048); 0 takes the width of the first batch.
        momentum: Bank update weight of the new projection (``--momentum`` 0.5).
        bank_size: Rows of the memory bank; 0 lets the trainer set it to the number of
            training items (main.py:133: ``len(train_data)``); a loss used alone then sizes
            it to its first batch (items 0..B-1).
    """

    temperature: float = bounded(0.1, gt=0)
    negs: int = bounded(4096, ge=1)
    dim: int = bounded(0, ge=0)
    momentum: float = bounded(0.5, ge=0, le=1)
    bank_size: int = bounded(0, ge=0)


class NPIDLoss(nn.Module):
    """NCE against a memory bank of every training item, over one view (the projection).

    Attributes:
        bank: ``[n, dim]`` unit rows, one per item (a buffer, checkpointed).
        z: The NCE normaliser, NaN until the first call fixes it (a buffer, checkpointed).
    """

    n_views = 1
    view_sources = (ViewSource("original", 0),)
    bank: torch.Tensor
    z: torch.Tensor

    def __init__(self, cfg: NPIDConfig) -> None:
        super().__init__()
        _positive(cfg.temperature, "loss.temperature")
        if cfg.negs < 1 or cfg.dim < 0 or cfg.bank_size < 0:
            raise ConfigError(
                f"loss.negs must be >= 1 and loss.dim, loss.bank_size >= 0, got {cfg.negs}, "
                f"{cfg.dim}, {cfg.bank_size}."
            )
        if not 0.0 <= cfg.momentum <= 1.0:
            raise ConfigError(f"loss.momentum must be in [0, 1], got {cfg.momentum}.")
        self.temperature = cfg.temperature
        self.negs = cfg.negs
        self.dim = cfg.dim
        self.momentum = cfg.momentum
        self.register_buffer("bank", torch.empty(0, cfg.dim))
        self._pending_size = cfg.bank_size
        self.register_buffer("z", torch.tensor(math.nan, dtype=torch.float64))
        if cfg.bank_size and cfg.dim:
            self.reset_bank(cfg.bank_size)

    @property
    def n(self) -> int:
        """Rows of the bank (items)."""
        return int(self.bank.shape[0])

    def reset_bank(self, n: int, dim: int = 0) -> None:
        """A fresh bank of ``n`` random unit rows (model.py:84) and no ``z`` yet.

        Args:
            n: Rows (items).
            dim: Their width (0: ``loss.dim``; known only after the first batch when that is 0).
        """
        if n < 1:
            raise ConfigError(f"The NPID memory bank needs at least one item, got {n}.")
        self.dim = dim or self.dim
        if not self.dim:  # sized at the first batch
            self._pending_size = n
            return
        self.bank = F.normalize(torch.randn(n, self.dim), dim=-1).to(self.bank.device)
        self.z = torch.tensor(math.nan, dtype=torch.float64, device=self.z.device)

    def draw(self, items: torch.Tensor) -> torch.Tensor:
        """``[B, 1+negs]`` bank rows: uniform random, column 0 the items (model.py:90-93)."""
        idx = torch.randint(high=self.n, size=(items.shape[0], self.negs + 1))
        idx[:, 0] = items.cpu()
        return idx

    def nce(
        self,
        proj: torch.Tensor,
        items: torch.Tensor,
        sample_idx: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The loss of ``proj [B, D]`` for ``items [B]`` and the items' bank rows before update.

        Args:
            proj: Unit projections.
            items: Each row's item (its bank row).
            sample_idx: ``[B, 1+negs]`` bank rows to use instead of a random draw (tests inject
                the oracle's draws); column 0 must be ``items``.
        """
        if self.n == 0:
            self.reset_bank(self._pending_size or proj.shape[0], proj.shape[-1])
        if self.bank.shape[1] != proj.shape[-1]:
            raise ConfigError(
                f"loss.dim is {self.bank.shape[1]} but the projections are {proj.shape[-1]}-d; "
                "set loss.dim to model.proj_dim (or 0)."
            )
        idx = self.draw(items) if sample_idx is None else sample_idx.to(torch.long)
        batch = proj.shape[0]
        bank = self.bank.to(dtype=proj.dtype, device=proj.device)
        samples = bank.index_select(0, idx.reshape(-1).to(proj.device)).view(
            batch, -1, bank.shape[1]
        )
        out = torch.exp(torch.bmm(samples, proj.unsqueeze(-1)).view(batch, -1) / self.temperature)
        if torch.isnan(self.z):
            # model.py:100-101: z = mean(out) * n, once, from the first batch.
            self.z = torch.tensor(
                float(out.detach().mean()) * self.n, dtype=torch.float64, device=self.z.device
            )
        output = out / float(self.z)
        noise = self.negs / self.n
        p_d = (output[:, 0] / (output[:, 0] + noise)).log()
        p_n = (noise / (output[:, 1:] + noise)).log()
        loss = -(p_d.sum() + p_n.sum()) / batch
        return loss, samples[:, 0].detach()

    def forward(
        self,
        views: torch.Tensor,
        items: torch.Tensor | None = None,
        sample_idx: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The loss of ``views [B, 1, D]``; ``items`` default to rows 0..B-1."""
        views = _views(views, self.n_views, "npid")
        if items is None:
            items = torch.arange(views.shape[0])
        loss, _ = self.nce(views[:, 0], items, sample_idx)
        return loss

    @torch.no_grad()
    def enqueue(self, proj: torch.Tensor, items: torch.Tensor, pos_samples: torch.Tensor) -> None:
        """``bank[items] <- normalize(m proj + (1-m) old)`` (model.py:116-120)."""
        new = proj.detach().to(pos_samples) * self.momentum + pos_samples * (1.0 - self.momentum)
        new = F.normalize(new, dim=-1).to(self.bank)
        self.bank.index_copy_(0, items.to(self.bank.device, torch.long), new)
