"""The ``deattention-mining`` trainer: the harness's tuple mining plus the mask loss.

methods.md Methods B, C.3-C.4 and PART E. Built on the public trainer API: the harness's
:class:`vpr_bench.train.TupleParadigm` (cache refresh every ``cache_queries`` queries, nearest
positive, hardest negatives of a random pool plus the negative cache) is extended, not copied:

* mining descriptors: trunk + NetVLAD only (``trainer.mining_descriptor = plain``, the
  original's cache, train.py:221-260) or the trained descriptor (``full``);
* ``trainer.mining_margin`` > 0 adds Nanne's violation filter: a negative is kept only when
  ``d(q, n) < d(q, p) + margin`` (Euclidean, no square root on the margin), and a query whose
  negatives all fail is skipped; with margin 1.5 it keeps essentially the hardest ones;
* each step forwards every image of its tuples in one batch (the de-attention BatchNorms see
  the whole pack) and optimises ``ranking loss + trainer.mask_weight * MSE(M_gt, M)`` over all
  images of the step; the ranking loss is the mean over (query, negative) pairs;
* ``trainer.deatt_centroids``: before the first epoch, NetVLAD's centres are recomputed by
  k-means on trunk descriptors whose ``M_gt >= 0.5`` (``trainer.deatt_candidates`` random
  locations per image, at most ``model.init_per_image`` kept; fewer are kept and logged, where
  the original crashed, get_clusters.py:124-130).

Masks come from a teacher (:mod:`.teachers`) and are cached on disk at map size, so a resumed
run reads the masks its first part wrote.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vpr_bench import bounded
from vpr_bench.errors import ConfigError
from vpr_bench.train import (
    Engine,
    TrainContext,
    TrainOutcome,
    TripletMiningConfig,
    TupleParadigm,
    gather_sharded,
    round_seed,
    training_descriptors,
    unwrap,
)
from vpr_bench_deattention.teachers import (
    FolderTeacher,
    MaskCache,
    SynthCityTeacher,
    VainFTeacher,
    build_teacher,
    image_digest,
    mask_target,
)

__all__ = ["DeAttentionMiningConfig", "DeAttentionParadigm", "fit"]

log = logging.getLogger(__name__)

MINING_DESCRIPTORS = ("plain", "full")


@dataclass
class DeAttentionMiningConfig(TripletMiningConfig):
    """Options of the ``deattention-mining`` trainer (``trainer.*``); see TripletMiningConfig.

    Attributes:
        teacher: Mask teacher: ``synthcity``, ``folder`` or ``vainf-deeplabv3plus`` (``""``:
            none; refused when the model has de-attention on).
        teacher_folder: The ``folder`` teacher's class maps.
        teacher_weights: The VainF checkpoint (``vainf-deeplabv3plus``).
        mask_weight: w of ``w * MSE(M_gt, M)`` (0.1).
        mask_cache: Folder of cached masks (``""``: ``<run>/mask-cache``).
        mining_descriptor: ``plain`` (trunk + NetVLAD, the original) or ``full``.
        mining_margin: Violation filter margin (0: off; de-attention only: 0.1).
        deatt_centroids: Recompute NetVLAD's centres on kept locations before training.
        deatt_candidates: Random locations drawn per image for those centres (200).
    """

    teacher: str = ""
    teacher_folder: str = ""
    teacher_weights: str = ""
    mask_weight: float = bounded(0.1, ge=0)
    mask_cache: str = ""
    mining_descriptor: str = "plain"
    mining_margin: float = bounded(0.0, ge=0)
    deatt_centroids: bool = False
    deatt_candidates: int = bounded(200, ge=1)

    def __post_init__(self) -> None:
        if self.mining_descriptor not in MINING_DESCRIPTORS:
            raise ConfigError(
                f"trainer.mining_descriptor = {self.mining_descriptor!r} is not valid; choose "
                f"one of: {', '.join(MINING_DESCRIPTORS)}."
            )


class _Plain(nn.Module):
    """The model's trunk + NetVLAD descriptor as a module (for the mining cache)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.plain_descriptor(images)  # type: ignore[no-any-return,operator]


class DeAttentionParadigm(TupleParadigm):
    """The harness's tuple paradigm with the violation filter and the mask loss.

    Args:
        ctx: The run's context.
        engine: The engine running it.
        teacher: The mask teacher, or None when no mask is trained.
    """

    def __init__(
        self,
        ctx: TrainContext,
        engine: Engine,
        teacher: SynthCityTeacher | FolderTeacher | VainFTeacher | None,
    ) -> None:
        super().__init__(ctx, engine)
        self.cfg: DeAttentionMiningConfig = ctx.config
        self.teacher = teacher
        folder = Path(self.cfg.mask_cache) if self.cfg.mask_cache else ctx.run_dir / "mask-cache"
        self.cache = MaskCache(folder.expanduser())
        self._masks: dict[tuple[int, tuple[int, int]], torch.Tensor] = {}
        self._digests: dict[int, str] = {}
        self.last_terms: dict[str, float] = {}

    # -- mining ----------------------------------------------------------------------------
    def make_plan(self, engine: Engine, epoch: int, round_idx: int) -> torch.Tensor:
        """Refresh the cache with the chosen descriptor, mine, then filter violations."""
        chunk = self._chunk(epoch, round_idx)
        model = unwrap(engine.ddp_model)
        module = _Plain(model) if self.cfg.mining_descriptor == "plain" else model

        def compute(indices: Sequence[int]) -> torch.Tensor:
            return training_descriptors(
                module,
                self.images,
                list(indices),
                device=engine.device,
                batch_size=self.cfg.extract_batch_size,
            )

        desc = gather_sharded(compute, len(self.images), engine.info)
        q_desc, db_desc = desc[: self.n_q], desc[self.n_q :]
        plan = self.miner.mine(
            chunk, q_desc[chunk.to(desc.device)], db_desc, round_seed(self.seed, epoch, round_idx)
        )
        if self.cfg.mining_margin > 0:
            plan = violation_filter(plan, q_desc, db_desc, self.cfg.mining_margin)
        return plan

    # -- loss ------------------------------------------------------------------------------
    def loss(self, engine: Engine, rows: torch.Tensor) -> torch.Tensor:
        """Ranking loss over (query, negative) pairs + ``w * MSE(M_gt, M)`` over all images."""
        image_ids = rows.clone()
        image_ids[:, 1:] = torch.where(rows[:, 1:] >= 0, rows[:, 1:] + self.n_q, -1)
        valid = image_ids >= 0
        flat = image_ids[valid].tolist()
        desc = engine.forward(engine.train_batch(self.images, flat))
        slot = torch.full(image_ids.shape, -1, dtype=torch.long)
        slot[valid] = torch.arange(len(flat))
        ranking = desc.new_zeros(())
        pairs = 0
        for r in range(rows.shape[0]):
            negs = slot[r, 2:][slot[r, 2:] >= 0]
            if len(negs) == 0:
                continue
            q = desc[slot[r, 0]][None]
            p = desc[slot[r, 1]][None, None]
            ranking = ranking + engine.loss_fn(q, p, desc[negs.to(desc.device)][None]) * len(negs)
            pairs += len(negs)
        loss = ranking / max(pairs, 1)
        self.last_terms = {"ranking": float(loss.detach())}
        model = unwrap(engine.ddp_model)
        mask = getattr(model, "last_mask", None)
        if self.teacher is not None and mask is not None and self.cfg.mask_weight > 0:
            size = (int(mask.shape[2]), int(mask.shape[3]))
            target = torch.stack([self.target(i, size) for i in flat]).to(mask.device)
            mask_loss = F.mse_loss(mask.float(), target)
            self.last_terms["mask"] = float(mask_loss.detach())
            loss = loss + self.cfg.mask_weight * mask_loss
        return loss

    # -- masks -----------------------------------------------------------------------------
    def digest(self, index: int) -> str:
        """sha256 of image ``index``'s bytes (memoised)."""
        known = self._digests.get(index)
        if known is None:
            known = self._digests[index] = image_digest(self.images.paths[index])
        return known

    def target(self, index: int, size: tuple[int, int]) -> torch.Tensor:
        """``M_gt`` of image ``index`` at map ``size``: memory, else disk cache, else teacher."""
        memo = self._masks.get((index, size))
        if memo is not None:
            return memo
        if self.teacher is None:
            raise ConfigError("deattention-mining: a mask target was asked for without teacher.")
        path = self.images.paths[index]
        key = MaskCache.key(
            self.teacher.identity, self.digest(index), self.teacher.source_digest(path), size
        )
        mask = self.cache.get(key)
        if mask is None:
            pixels = (
                self.images.load(index) if getattr(self.teacher, "needs_pixels", False) else None
            )
            mask = mask_target(self.teacher.keep(path, pixels), size)
            self.cache.put(key, mask)
        self._masks[(index, size)] = mask
        return mask

    # -- de-attention centroids ------------------------------------------------------------
    def recluster(self, engine: Engine) -> None:
        """Re-initialise NetVLAD from k-means on kept (``M_gt >= 0.5``) trunk descriptors."""
        model: Any = unwrap(engine.ddp_model)
        mcfg = model.config
        rng = np.random.default_rng(self.seed)
        n_db = len(self.images) - self.n_q
        count = min(int(mcfg.init_images), n_db)
        chosen = np.sort(rng.choice(n_db, size=count, replace=False)) + self.n_q
        chunks: list[np.ndarray] = []
        short = 0
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                for start in range(0, len(chosen), self.cfg.extract_batch_size):
                    ids = [int(i) for i in chosen[start : start + self.cfg.extract_batch_size]]
                    feats = model.local_features(self.images.batch(ids).to(engine.device))
                    feats = F.normalize(feats.float(), p=2, dim=1)
                    size = (int(feats.shape[2]), int(feats.shape[3]))
                    flat = feats.flatten(2).transpose(1, 2).cpu().numpy()
                    for image, index in zip(flat, ids, strict=True):
                        keep = self.target(index, size).reshape(-1).numpy() >= 0.5
                        n_cand = min(self.cfg.deatt_candidates, image.shape[0])
                        cand = rng.choice(image.shape[0], size=n_cand, replace=False)
                        kept = cand[keep[cand]][: int(mcfg.init_per_image)]
                        short += int(len(kept) < min(int(mcfg.init_per_image), n_cand))
                        chunks.append(image[kept])
        finally:
            model.train(was_training)
        descriptors = np.ascontiguousarray(np.concatenate(chunks), dtype=np.float32)
        if short:
            log.info(
                "De-attention centroids: %d of %d images kept fewer than %d locations (the "
                "original crashed there; here they contribute what they have).",
                short,
                len(chosen),
                mcfg.init_per_image,
            )
        if descriptors.shape[0] < mcfg.num_clusters:
            raise ConfigError(
                f"De-attention centroids: {descriptors.shape[0]} kept descriptors cannot make "
                f"{mcfg.num_clusters} clusters; raise model.init_images or "
                "trainer.deatt_candidates, or de-attend fewer categories."
            )
        centroids = _kmeans(descriptors, int(mcfg.num_clusters), int(mcfg.init_iters), self.seed)
        # get_model.py adds 1e-10 to the centres before init_params ("prevent to divide by 0").
        model.net_vlad.init_from_clusters(centroids + 1e-10, descriptors)
        log.info(
            "De-attention centroids: %d centres from %d kept descriptors of %d images.",
            mcfg.num_clusters,
            descriptors.shape[0],
            len(chosen),
        )


def _kmeans(points: np.ndarray, k: int, niter: int, seed: int) -> np.ndarray:
    try:
        import faiss
    except ImportError:
        from vpr_bench_netvlad.centroids import kmeans_torch

        log.warning("faiss is not installed: k-means runs on the torch fallback.")
        return kmeans_torch(points, k, niter=niter, seed=seed)
    kmeans = faiss.Kmeans(points.shape[1], k, niter=niter, seed=seed, verbose=False)
    kmeans.train(points)
    return np.asarray(kmeans.centroids, dtype=np.float32).reshape(k, -1)


def violation_filter(
    plan: torch.Tensor, q_desc: torch.Tensor, db_desc: torch.Tensor, margin: float
) -> torch.Tensor:
    """Keep negatives with ``d(q, n) < d(q, p) + margin``; drop queries with none left.

    Args:
        plan: ``[S, 2 + N]`` mined rows ``[query, positive, negatives...]``.
        q_desc: ``[Q, D]`` descriptors of the kept queries (indexed by ``plan[:, 0]``).
        db_desc: ``[M, D]`` database descriptors.
        margin: The margin on Euclidean distances (not square-rooted).

    Returns:
        ``[S', 2 + N]`` rows, failing negatives set to -1 (kept ones first, in their order).
    """
    if len(plan) == 0:
        return plan
    q = q_desc[plan[:, 0].to(q_desc.device)].float()
    pos = db_desc[plan[:, 1].to(db_desc.device)].float()
    negs = plan[:, 2:]
    valid = negs >= 0
    neg_desc = db_desc[negs.clamp(min=0).to(db_desc.device)].float()
    d_pos = (q - pos).norm(dim=-1)
    d_neg = (q[:, None, :] - neg_desc).norm(dim=-1)
    keep = (d_neg < d_pos[:, None] + margin).cpu() & valid
    order = torch.argsort((~keep).to(torch.int8), dim=1, stable=True)
    kept_negs = torch.where(
        torch.gather(keep, 1, order), torch.gather(negs, 1, order), torch.full_like(negs, -1)
    )
    rows = torch.cat([plan[:, :2], kept_negs], dim=1)
    return rows[keep.any(dim=1)]


def fit(ctx: TrainContext) -> TrainOutcome:
    """Train with mined tuples and the mask loss; the ``fit`` of ``deattention-mining``.

    Raises:
        ConfigError: De-attention (mask loss or centroids) without a teacher, before anything
            is trained or written.
    """
    cfg: DeAttentionMiningConfig = ctx.config
    model: Any = ctx.model
    has_mask = getattr(model, "deattention", None) is not None
    needs_masks = (has_mask and cfg.mask_weight > 0) or cfg.deatt_centroids
    if cfg.deatt_centroids and not hasattr(model, "local_features"):
        raise ConfigError("trainer.deatt_centroids needs a NetVLAD-based model.")
    teacher = None
    if needs_masks:
        categories = tuple(getattr(model.config, "deatt_categories", ()))
        teacher = build_teacher(
            cfg.teacher, categories, cfg.teacher_folder, cfg.teacher_weights, ctx.device
        )
        first = ctx.train_split.database[0].path
        teacher.check(Path(first))
    engine = Engine(ctx, batch_rows=cfg.tuples_per_step)
    paradigm = DeAttentionParadigm(ctx, engine, teacher)
    if cfg.deatt_centroids and not ctx.resume:
        paradigm.recluster(engine)
    return engine.run(paradigm)
