"""The ``daco-views`` trainer: DaCo's training loop on the harness :class:`~vpr_bench.train.Engine`.

An *item* is an image and its translation into the other domain (DaCo utils.py:44-53). From
``ctx.pairs`` (``DatasetSpec.load_pairs``): a pair whose second image is a generated one
(``domain`` starting with ``"generated"``, the DaCo layout) is one item; a pair of two real
renders of one place (synthcity's day/night) gives two, each image with the other as its
translation, so both domains' originals are items as in DaCo (600 for Tokyo's 300 pairs).

Each epoch shuffles the items (seed + epoch) and drops the last partial batch (main.py:123).
Per batch, every view the loss lists in ``view_sources`` is an independent augmentation
(:class:`~vpr_bench_daco.augment.ViewAugment`, keyed by seed, step, item and view); one forward
pass per (image, augmentation, encoder), so BatchNorm statistics are per view batch as in
main.py:29-50. Stateful losses keep their state here, checkpointed with the loop so that a
resumed run is exact: MoCo's momentum key encoder (keys computed on a shuffled batch,
main.py:40-43; momentum update after each step, main.py:60-62) and queue, NPID's memory bank
(one row per item, main.py:133) and its constant ``z``. Under DDP each rank computes the loss
over its own share of the batch (its own negatives, as the one-GPU original does per batch).
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from vpr_bench import bounded
from vpr_bench.errors import ConfigError, DataError
from vpr_bench.train import Engine, ImageTensors, LoopConfig, TrainContext, TrainOutcome
from vpr_bench_daco.augment import ViewAugment
from vpr_bench_daco.augment_batch import augment_batch

__all__ = ["DaCoViewsConfig", "DaCoViewsParadigm", "fit", "training_items"]

log = logging.getLogger(__name__)


@dataclass
class DaCoViewsConfig(LoopConfig):
    """Options of ``daco-views`` (``trainer.*``); see also LoopConfig.

    Defaults are DaCo's (main.py:131, utils.py:16-23): Adam lr 1e-3, weight decay 1e-6, no
    schedule, 16 items per batch, 256-pixel crops.

    Attributes:
        items_per_batch: Items per batch (B; the loss sees B rows of each view). At least 2.
        iterations: Optimiser steps of the run; 0 runs ``trainer.epochs``. Otherwise the run has
            ``iterations // (items // items_per_batch)`` epochs (main.py:126).
        crop: Height of the training crops (DaCo: 256, square).
        crop_width: Their width (0: ``crop``, square).
        crop_scale: Area fraction range of the random crops.
        view_jitter: ``(brightness, contrast, saturation, hue)`` of each view's colour jitter.
        jitter_p: Probability of the jitter.
        gray_p: Probability of a grey view.
        flip_p: Probability of a mirrored view.
        batched_augment: Augment each view batch at once on the training device
            (:func:`~vpr_bench_daco.augment_batch.augment_batch`: the same draws, crops resized
            by ``roi_align``) instead of image by image on the CPU; the images of the training
            set must share one size.
    """

    optimizer: str = "adam"
    lr: float = bounded(1e-3, gt=0)
    weight_decay: float = bounded(1e-6, ge=0)
    scheduler: str = "none"
    select_metric: str = "R@1"
    items_per_batch: int = bounded(16, ge=2)
    iterations: int = bounded(0, ge=0)
    crop: int = bounded(256, ge=1)
    crop_width: int = bounded(0, ge=0)
    crop_scale: tuple[float, float] = bounded((0.2, 1.0), gt=0, le=1)
    view_jitter: tuple[float, float, float, float] = bounded((0.4, 0.4, 0.4, 0.1), ge=0)
    jitter_p: float = bounded(0.8, ge=0, le=1)
    gray_p: float = bounded(0.2, ge=0, le=1)
    flip_p: float = bounded(0.5, ge=0, le=1)
    batched_augment: bool = False

    def __post_init__(self) -> None:
        if self.items_per_batch < 2:
            raise ConfigError(
                f"trainer.items_per_batch must be >= 2 (the in-batch negatives), got "
                f"{self.items_per_batch}."
            )
        if self.iterations < 0:
            raise ConfigError(f"trainer.iterations must be >= 0, got {self.iterations}.")

    def augment(self) -> ViewAugment:
        """The view augmentation these options describe."""
        return ViewAugment(
            size=self.crop,
            width=self.crop_width,
            scale=(float(self.crop_scale[0]), float(self.crop_scale[1])),
            jitter=tuple(float(v) for v in self.view_jitter),  # type: ignore[arg-type]
            jitter_p=self.jitter_p,
            gray_p=self.gray_p,
            flip_p=self.flip_p,
        )


def _generated(record: Any) -> bool:
    return str(getattr(record, "domain", "") or "").startswith("generated")


def training_items(pairs: list[Any]) -> list[tuple[Any, Any]]:
    """``(original, translation)`` items from ``load_pairs`` pairs (see the module docstring)."""
    items = [(a, b) for a, b in pairs]
    items += [(b, a) for a, b in pairs if not _generated(b)]
    return items


class DaCoViewsParadigm:
    """Plans of item indices (``[rows, 1]``) and the views' loss (see the module docstring)."""

    def __init__(self, ctx: TrainContext, engine: Engine) -> None:
        self.cfg: DaCoViewsConfig = ctx.config
        if not ctx.pairs:
            raise DataError(
                "The daco-views trainer needs image pairs; the training dataset provided none "
                "(use a dataset that provides 'domain-pairs': daco-tokyo, synthcity, ...)."
            )
        self.items = training_items(list(ctx.pairs))
        batch = self.cfg.items_per_batch
        if len(self.items) < batch:
            raise DataError(
                f"The training set has {len(self.items)} items, fewer than "
                f"trainer.items_per_batch = {batch}; lower it."
            )
        self.seed = ctx.seed
        self.augment = self.cfg.augment()
        paths = [a.path for a, _ in self.items] + [b.path for _, b in self.items]
        self.images = ImageTensors(
            paths, ctx.preprocess, None, cache=self.cfg.cache_images, workers=self.cfg.num_workers
        )
        loss = engine.loss_fn
        self.loss_module: nn.Module = loss
        self.query_model: nn.Module = engine.model
        self.sources = tuple(getattr(loss, "view_sources", ()))
        if not self.sources or len(self.sources) != getattr(loss, "n_views", -1):
            raise ConfigError(
                f"Loss {type(loss).__name__} lists no view_sources matching its n_views; the "
                "daco-views trainer trains the DaCo plugin's losses (daco, simclr, simsiam, "
                "moco, npid)."
            )
        outputs = {s.output for s in self.sources}
        widths = (getattr(engine.model, "descriptor_dim", 0), getattr(engine.model, "proj_dim", 0))
        if outputs == {"feature", "proj"} and widths[0] != widths[1]:
            raise ConfigError(
                f"Loss {type(loss).__name__} compares backbone features ({widths[0]}-d) with "
                f"projections: set model.proj_dim={widths[0]} (DaCo: 2048 and 2048)."
            )
        self.channels_last = engine.device.type == "cuda"
        if self.channels_last:  # bf16 autocast (trainer.amp) + channels_last convolutions
            engine.model.to(memory_format=torch.channels_last)
        self.key_model: nn.Module | None = None
        self.momentum = float(getattr(loss, "key_momentum", 0.0))
        if any(s.encoder == "key" for s in self.sources):
            self.key_model = copy.deepcopy(engine.model)
            for param in self.key_model.parameters():
                param.requires_grad_(False)
        self._pending_momentum = False
        reset_bank = getattr(loss, "reset_bank", None)
        if callable(reset_bank) and getattr(loss, "n", -1) != len(self.items):
            reset_bank(len(self.items))
        self.per_epoch: int = len(self.items) // int(batch)

    # -- EpochHooks ---------------------------------------------------------------------
    def total_epochs(self) -> int:
        """``trainer.epochs``, or ``iterations // steps per epoch`` (main.py:126)."""
        if self.cfg.iterations:
            return max(1, int(self.cfg.iterations) // self.per_epoch)
        return int(self.cfg.epochs)

    # -- Paradigm -----------------------------------------------------------------------
    def rounds(self, epoch: int) -> int:
        """One plan per epoch."""
        return 1

    def make_plan(self, engine: Engine, epoch: int, round_idx: int) -> torch.Tensor:
        """The items shuffled (seed + epoch), cut to whole batches (drop_last)."""
        order = torch.randperm(
            len(self.items), generator=torch.Generator().manual_seed(self.seed + epoch)
        )
        return order[: self.per_epoch * self.cfg.items_per_batch].reshape(-1, 1)

    def _views(self, engine: Engine, items: list[int], image: str, aug: int) -> torch.Tensor:
        offset = 0 if image == "original" else len(self.items)
        view_id = 2 * aug + (0 if image == "original" else 1)
        key = (self.seed, engine.step)
        if self.cfg.batched_augment:
            raw = [self.images.load_uint8(offset + i) for i in items]
            if len({tuple(r.shape) for r in raw}) > 1:
                raise DataError(
                    "trainer.batched_augment needs training images of one size; these differ "
                    f"({sorted({tuple(r.shape) for r in raw})}): turn it off."
                )
            keys = [(*key, i, view_id) for i in items]
            return augment_batch(self.augment, torch.stack(raw), keys, engine.device)
        return torch.stack(
            [
                self.augment.apply(self.images.load_uint8(offset + i), (*key, i, view_id))
                for i in items
            ]
        )

    def _momentum_update(self) -> None:
        """``key <- m key + (1 - m) query`` after the step that used the keys (main.py:60-62)."""
        if not self._pending_momentum or self.key_model is None:
            return
        with torch.no_grad():
            for p_k, p_q in zip(
                self.key_model.parameters(), self.query_model.parameters(), strict=True
            ):
                p_k.mul_(self.momentum).add_(p_q.detach(), alpha=1.0 - self.momentum)
        self._pending_momentum = False

    def loss(self, engine: Engine, rows: torch.Tensor) -> torch.Tensor:
        """The loss of this rank's ``rows`` (item indices)."""
        self._momentum_update()
        items = [int(i) for i in rows[:, 0]]
        dim = int(getattr(engine.model, "descriptor_dim", 0))
        outputs: dict[tuple[str, int, str], torch.Tensor] = {}
        for source in self.sources:
            group = (source.image, source.augmentation, source.encoder)
            if group in outputs:
                continue
            batch = self._views(engine, items, source.image, source.augmentation)
            if self.channels_last:
                batch = batch.to(engine.device).contiguous(memory_format=torch.channels_last)
            if source.encoder == "key":
                assert self.key_model is not None
                shuffle = torch.randperm(len(items))
                with torch.no_grad():
                    out = engine.forward(batch[shuffle], module=self.key_model, projection=True)
                outputs[group] = out[torch.argsort(shuffle).to(out.device)]
            else:
                outputs[group] = engine.forward(batch, projection=True)

        def pick(source: Any) -> torch.Tensor:
            out = outputs[(source.image, source.augmentation, source.encoder)]
            return out[:, :dim] if source.output == "feature" else out[:, dim:]

        views = torch.stack([pick(s) for s in self.sources], dim=1)
        loss_fn: Any = engine.loss_fn
        value: torch.Tensor
        if callable(getattr(loss_fn, "nce", None)):  # NPID: the bank rows are the items
            index = torch.tensor(items, dtype=torch.long)
            value, pos_samples = loss_fn.nce(views[:, 0], index)
            loss_fn.enqueue(views[:, 0], index, pos_samples)
            return value
        value = loss_fn(views)
        if self.key_model is not None:
            loss_fn.enqueue(views[:, 1])
            self._pending_momentum = True
        return value

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The loss's buffers (queue, bank, z) and the key encoder."""
        self._momentum_update()
        state = {f"loss.{k}": v.detach().clone() for k, v in self._loss_buffers().items()}
        if self.key_model is not None:
            state.update({f"key.{k}": v for k, v in self.key_model.state_dict().items()})
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore :meth:`state_dict`."""
        for name, buffer in self._loss_buffers().items():
            saved = state.get(f"loss.{name}")
            if saved is None:
                raise DataError(f"The checkpoint has no loss.{name}; it is not a run of this loss.")
            setattr(self.loss_module, name, saved.to(buffer.device))
        if self.key_model is not None:
            self.key_model.load_state_dict(
                {k[len("key.") :]: v for k, v in state.items() if k.startswith("key.")}
            )
        self._pending_momentum = False

    def _loss_buffers(self) -> dict[str, torch.Tensor]:
        return dict(self.loss_module.named_buffers(recurse=False))


def fit(ctx: TrainContext) -> TrainOutcome:
    """Train on augmented views of items; the ``fit`` of the ``daco-views`` trainer."""
    engine = Engine(ctx, batch_rows=ctx.config.items_per_batch)
    if engine.cfg.accum_steps != 1:
        raise ConfigError(
            "trainer.accum_steps must be 1 for daco-views: the in-batch negatives, the MoCo "
            "queue and the NPID bank follow whole batches."
        )
    return engine.run(DaCoViewsParadigm(ctx, engine))
