"""DaCo's two memory losses: ``moco`` (a queue of momentum-encoded keys) and ``npid`` (a bank
of every item's projection); see :mod:`.losses` for the definitions and their sources.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vpr_bench import bounded
from vpr_bench.errors import ConfigError
from vpr_bench_daco.views import ViewSource, check_positive, check_views

__all__ = ["MoCoConfig", "MoCoLoss", "NPIDConfig", "NPIDLoss"]


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
        check_positive(cfg.temperature, "loss.temperature")
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
        views = check_views(views, self.n_views, "moco")
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
        check_positive(cfg.temperature, "loss.temperature")
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
        views = check_views(views, self.n_views, "npid")
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
