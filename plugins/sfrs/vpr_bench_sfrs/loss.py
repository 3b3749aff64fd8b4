"""The SFRS loss as OpenIBL's SFRS trainer computes it (methods.md Part A, section 4.4).

One call takes a ``region-tuples`` batch (:class:`vpr_bench.BatchKind`): per tuple the query's R
region descriptors (region 0 global), the regions of its easiest positive and N negatives, and
the student's and the teacher's similarities between the query's regions and the regions of
up to P difficult positives. It returns ``hard + w * soft``:

* **hard**, on cosine similarities ``s = <a, x>`` of unit descriptors, ``tau0 = temperatures[0]``:

  - ``sare-ind`` (OpenIBL's default): ``mean_j log(1 + exp((s_j - s_p) / tau0))``;
  - ``sare-joint``: ``-log softmax([s_p, s_1, ..., s_N] / tau0)[0]``;
  - ``triplet``: ``mean_j max(0, ||a - p + eps|| - ||a - n_j + eps|| + margin)``, eps = 1e-6.

  ``a`` and ``p`` are the global descriptors of the query and the positive. In generation 0
  ``n_j`` is negative j's global descriptor; from generation 1 on it is the region of negative j
  (the global one included) most similar to the query's global descriptor, chosen without
  gradient (:func:`hard_negative_regions`). Mean over the negatives, then over the tuples.

* **soft**: with ``z`` = the student's similarities of the query's *global* region to every
  region of every difficult positive (flattened positive-major to P*R values) and ``y`` the
  same from the teacher, ``-sum_i softmax(y / tau_g)_i * log_softmax(z / tau0)_i``, where
  ``tau_g = temperatures[generation]``; mean over the tuples.

* ``w = soft_weight`` from generation 1 on and 0 in generation 0, where the soft term is still
  computed (OpenIBL ``examples/netvlad_img_sfrs.py:207``).

Padded difficult positives (``diff_mask`` False) are left out of both softmaxes, so a tuple
with fewer than P difficult positives gets exactly the loss of its real ones. A tuple with none
contributes 0 to the soft term and still counts in its mean: the soft term is the sum over
tuples divided by B, as OpenIBL's ``mean(0)`` over its (always full) tuples, which also keeps
every tuple's loss independent of its batch-mates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from vpr_bench import bounded, check_ranges
from vpr_bench.errors import ConfigError

__all__ = ["HARD_LOSSES", "SFRSConfig", "SFRSLoss", "hard_negative_regions"]

HARD_LOSSES = ("sare-ind", "sare-joint", "triplet")
"""The hard-loss variants of OpenIBL's SFRS trainer (``--loss-type sare_ind|sare_joint|
triplet``); the published recipe uses ``sare-ind``."""

_TRIPLET_EPS = 1e-6
"""Added to each difference vector before its norm, as torch's ``triplet_margin_loss`` does."""


@dataclass
class SFRSConfig:
    """Options of the SFRS loss (the ``loss.*`` keys).

    Attributes:
        hard: The hard (tuple) loss, one of :data:`HARD_LOSSES`.
        temperatures: ``temperatures[0]`` divides every student similarity (hard and soft
            terms); ``temperatures[g]`` divides the teacher's similarities in generation g.
            One entry per generation (OpenIBL: 0.07, 0.07, 0.06, 0.05 for 4 generations).
        soft_weight: Weight of the soft term from generation 1 on (0 in generation 0).
        margin: The triplet variant's margin on (unsquared) L2 distances. OpenIBL's scripts pass
            ``--margin 0.1`` and use its square root, so the default is ``sqrt(0.1)``; the
            value here is the margin itself, as ``loss.margin`` of the triplet loss.
    """

    hard: str = "sare-ind"
    temperatures: tuple[float, ...] = bounded((0.07, 0.07, 0.06, 0.05), gt=0)
    soft_weight: float = bounded(0.5, ge=0)
    margin: float = bounded(math.sqrt(0.1), ge=0)

    def __post_init__(self) -> None:
        if self.hard not in HARD_LOSSES:
            raise ConfigError(
                f"loss.hard = {self.hard!r} is not valid; choose one of: {', '.join(HARD_LOSSES)}."
            )
        self.temperatures = tuple(self.temperatures)
        if not self.temperatures:
            raise ConfigError(
                "loss.temperatures is empty; give one temperature per generation, "
                "e.g. --set loss.temperatures=0.07,0.07,0.06,0.05."
            )
        check_ranges(self, prefix="loss.")


def hard_negative_regions(anchors: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
    """For each negative, the region most similar to the query's global descriptor.

    Args:
        anchors: ``[B, R, L]`` query region descriptors, region 0 global.
        pairs: ``[B, 1+N, R, L]``: the positive, then N negatives.

    Returns:
        ``[B, N]`` int64 region indices in ``0..R-1`` (0 is the global region), chosen without
        gradient; ties go to the lowest index.
    """
    with torch.no_grad():
        scores = torch.einsum("bl,bnrl->bnr", anchors[:, 0], pairs[:, 1:])
        return scores.argmax(dim=2)


def _check_batch(
    anchors: torch.Tensor,
    pairs: torch.Tensor,
    sim_diff: torch.Tensor,
    sim_diff_teacher: torch.Tensor,
    diff_mask: torch.Tensor,
) -> None:
    ok = anchors.ndim == 3 and pairs.ndim == 4 and sim_diff.ndim == 4
    if ok:
        batch, regions, dim = anchors.shape
        ok = (
            pairs.shape[0] == batch
            and pairs.shape[1] >= 2
            and pairs.shape[2:] == (regions, dim)
            and regions >= 1
            and sim_diff.shape[0] == batch
            and sim_diff.shape[2:] == (regions, regions)
            and sim_diff_teacher.shape == sim_diff.shape
            and diff_mask.shape == sim_diff.shape[:2]
            and diff_mask.dtype == torch.bool
        )
    if not ok:
        raise ValueError(
            "SFRSLoss expects anchors [B, R, L], pairs [B, 1+N>=2, R, L], sim_diff and "
            "sim_diff_teacher [B, P, R, R], diff_mask [B, P] bool; got "
            f"{tuple(anchors.shape)}, {tuple(pairs.shape)}, {tuple(sim_diff.shape)}, "
            f"{tuple(sim_diff_teacher.shape)}, {tuple(diff_mask.shape)} {diff_mask.dtype}."
        )


class SFRSLoss(nn.Module):
    """SFRS: a hard tuple loss plus a soft region loss against the previous generation.

    Forward takes the ``region-tuples`` batch (see the module docstring) and returns a 0-d
    tensor; :meth:`parts` returns the two terms separately.
    """

    def __init__(self, config: SFRSConfig | None = None) -> None:
        super().__init__()
        self.config = config or SFRSConfig()

    def check_generations(self, generations: int) -> None:
        """Refuse, before any work, a run of more generations than there are temperatures.

        Args:
            generations: How many generations the trainer will run (``>= 1``).

        Raises:
            ConfigError: Fewer temperatures than generations, or ``generations < 1``.
        """
        temps = self.config.temperatures
        if generations < 1:
            raise ConfigError(f"SFRS needs at least 1 generation, not {generations}.")
        if generations > len(temps):
            example = (*temps, *(temps[-1],) * (generations - len(temps)))
            raise ConfigError(
                f"loss.temperatures has {len(temps)} entries but {generations} generations were "
                "asked for (fewer temperatures than generations): give one per generation, e.g. "
                f"--set loss.temperatures={','.join(str(t) for t in example)}."
            )

    def teacher_temperature(self, generation: int) -> float:
        """``temperatures[generation]``, the temperature of the teacher's similarities.

        Raises:
            ValueError: ``generation`` is not an int >= 0.
            ConfigError: ``generation >= len(temperatures)``.
        """
        if isinstance(generation, bool) or not isinstance(generation, int) or generation < 0:
            raise ValueError(f"generation must be an int >= 0, not {generation!r}.")
        temps = self.config.temperatures
        if generation >= len(temps):
            raise ConfigError(
                f"loss.temperatures has {len(temps)} entries but generation {generation} needs "
                f"temperatures[{generation}] (one per generation, 0 first); add more with "
                "--set loss.temperatures=T0,T1,..."
            )
        return float(temps[generation])

    def soft_weight_for(self, generation: int) -> float:
        """The weight of the soft term: 0 in generation 0, ``soft_weight`` after."""
        return 0.0 if generation == 0 else float(self.config.soft_weight)

    def _hard_loss(
        self, anchors: torch.Tensor, pairs: torch.Tensor, generation: int
    ) -> torch.Tensor:
        """The hard term (mean over negatives, then tuples); shapes as in :meth:`parts`."""
        query, positive = anchors[:, 0], pairs[:, 0, 0]  # [B, L] global descriptors
        if generation == 0:
            negatives = pairs[:, 1:, 0]
        else:
            index = hard_negative_regions(anchors, pairs)  # [B, N]
            index = index[:, :, None, None].expand(-1, -1, 1, pairs.shape[-1])
            negatives = pairs[:, 1:].gather(2, index).squeeze(2)  # [B, N, L]
        if self.config.hard == "triplet":
            d_pos = (query - positive + _TRIPLET_EPS).norm(dim=-1)  # [B]
            d_neg = (query[:, None] - negatives + _TRIPLET_EPS).norm(dim=-1)  # [B, N]
            hinge: torch.Tensor = (d_pos[:, None] - d_neg + self.config.margin).clamp(min=0)
            return hinge.mean()
        tau = self.config.temperatures[0]
        s_pos = (query * positive).sum(dim=-1)  # [B]
        s_neg = (query[:, None] * negatives).sum(dim=-1)  # [B, N]
        if self.config.hard == "sare-joint":
            logits = torch.cat([s_pos[:, None], s_neg], dim=1) / tau
            return (torch.logsumexp(logits, dim=1) - logits[:, 0]).mean()
        gap = (s_neg - s_pos[:, None]) / tau
        return torch.logaddexp(torch.zeros_like(gap), gap).mean()

    def _soft_loss(
        self,
        sim_diff: torch.Tensor,
        sim_diff_teacher: torch.Tensor,
        diff_mask: torch.Tensor,
        generation: int,
    ) -> torch.Tensor:
        """The soft term (masked cross-entropy, mean over all B tuples); shapes as in
        :meth:`parts`."""
        batch, count, regions, _ = sim_diff.shape
        tau_teacher = self.teacher_temperature(generation)
        student = sim_diff[:, :, 0, :].reshape(batch, count * regions) / self.config.temperatures[0]
        teacher = sim_diff_teacher[:, :, 0, :].detach().reshape(batch, count * regions)
        mask = diff_mask[:, :, None].expand(batch, count, regions).reshape(batch, -1)
        present = mask.any(dim=1)  # tuples with at least one difficult positive
        # A tuple without any keeps all its (padding) entries so that its softmaxes stay finite;
        # its row is zeroed below.
        keep = mask | ~present[:, None]
        target = torch.softmax((teacher / tau_teacher).masked_fill(~keep, -math.inf), dim=1)
        log_norm = torch.logsumexp(student.masked_fill(~keep, -math.inf), dim=1, keepdim=True)
        per_tuple = -(target * (student - log_norm)).sum(dim=1)  # target is 0 where not kept
        return torch.where(present, per_tuple, torch.zeros_like(per_tuple)).sum() / batch

    def parts(
        self,
        anchors: torch.Tensor,
        pairs: torch.Tensor,
        sim_diff: torch.Tensor,
        sim_diff_teacher: torch.Tensor,
        diff_mask: torch.Tensor,
        generation: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The hard and the soft term, unweighted.

        Args:
            anchors: ``[B, R, L]`` the query's region descriptors (region 0 global), unit norm.
            pairs: ``[B, 1+N, R, L]`` the easiest positive's, then N negatives' regions.
            sim_diff: ``[B, P, R, R]`` the student's similarities between the query's regions
                and each difficult positive's regions.
            sim_diff_teacher: The same from the teacher (detached here).
            diff_mask: ``[B, P]`` bool, False for padding where a tuple has fewer than P
                difficult positives.
            generation: The generation, 0 first.

        Returns:
            ``(hard, soft)``, two 0-d tensors.

        Raises:
            ValueError: Shapes or types other than above, or a negative generation.
            ConfigError: ``generation >= len(temperatures)``.
        """
        _check_batch(anchors, pairs, sim_diff, sim_diff_teacher, diff_mask)
        soft = self._soft_loss(sim_diff, sim_diff_teacher, diff_mask, generation)
        return self._hard_loss(anchors, pairs, generation), soft

    def forward(
        self,
        anchors: torch.Tensor,
        pairs: torch.Tensor,
        sim_diff: torch.Tensor,
        sim_diff_teacher: torch.Tensor,
        diff_mask: torch.Tensor,
        generation: int,
    ) -> torch.Tensor:
        """``hard + w * soft``, ``w`` = :meth:`soft_weight_for` (0 in generation 0).

        Arguments, returns and errors as in :meth:`parts` (one 0-d tensor).
        """
        hard, soft = self.parts(anchors, pairs, sim_diff, sim_diff_teacher, diff_mask, generation)
        return hard + self.soft_weight_for(generation) * soft
