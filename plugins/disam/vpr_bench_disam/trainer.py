"""The ``disam-gan`` trainer: DISAM's ComboGAN loop (methods.md A.2-A.4, PART E).

One step (batch 1): draw domains a != b and an image of each (resize the shorter side to
``load_size``, bicubic; random ``crop_size`` crop; B always mirrored: the negative, not an
augmentation), encode, translate both ways, re-encode and decode back, then

* G step (Adam of domains a and b over their encoder and decoder): LSGAN generator terms of
  both discriminators + ``lambda_cycle`` x SmoothL1 cycle terms + the ``disam`` loss of the
  four latent codes (:class:`vpr_bench_disam.loss.DisamLoss`);
* D step (Adam of discriminators a and b): ``0.5 (GAN(D(real), 1) + GAN(D(pool(fake)), 0))``
  with a 50-image history pool per domain.

After each epoch t the learning rate decays linearly over the last ``niter_decay`` epochs and
the ramped loss weights become ``base * t / (niter + niter_decay)``; a fresh run's first epoch
uses the full base weights (DISAM ``train.py`` / ``update_hyperparams``; kept). There is no model
selection: the reference tests its last epoch.

Every random draw of a step comes from a generator seeded by (seed, epoch, step), so a run
resumed from ``checkpoints/last.pt`` (nets, optimisers, pools, lr, ramp, position, RNG states)
repeats the uninterrupted run bit for bit on the CPU.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from vpr_bench import RunEvent, bounded, check_ranges
from vpr_bench.errors import ConfigError, UsageError
from vpr_bench.train import (
    TrainContext,
    TrainOutcome,
    capture_rng_state,
    load_train_state,
    restore_rng_state,
    save_train_state,
)
from vpr_bench_disam.checkpoint import find_network_files, load_plexer, opened
from vpr_bench_disam.loss import DisamLoss
from vpr_bench_disam.model import DisamC2FModel, DisamModel, build_translators
from vpr_bench_disam.networks import gan_loss

__all__ = ["DisamGanConfig", "ImagePool", "fit", "lr_at", "ramp_at", "sibling_weights"]

log = logging.getLogger(__name__)


@dataclass
class DisamGanConfig:
    """Options of the ``disam-gan`` trainer (the ``trainer.*`` keys).

    Attributes:
        niter: Epochs at the base learning rate (the README leaves it open; 300 inferred).
        niter_decay: Epochs of linear decay to 0 after ``niter`` (900 inferred: epochs 301-1200).
        lr: Adam learning rate (2e-4).
        beta1: Adam beta1 (0.5; beta2 0.999).
        load_size: Shorter side the images are resized to (286, bicubic).
        crop_size: Side of the random square crop (256); divisible by 4.
        pool_size: Fake images each domain's history pool keeps (50).
        lambda_cycle: Weight of the cycle terms (10).
        ndf: Width of the discriminators' first stage (64).
        disc_layers: ``--netD_n_layers`` (4).
        epoch_length: Steps per epoch; 0: the largest domain's image count (the reference).
        init_from: A folder or archive of a saved plexer (``<name>/<epoch>_net_G<i>.pth``,
            ``_net_D<i>``) to fine-tune from (the paper: the epoch-300 translation model).
        init_name: The model folder's name inside ``init_from`` (empty: ``init_from`` is it).
        init_epoch: The saved epoch to load; training continues with epoch ``init_epoch + 1``.
        require_init: Refuse to start without ``init_from`` (the paper profile).
        checkpoint_every_steps: Also save ``checkpoints/last.pt`` every this many steps
            (0: at the end of each epoch only).
        seed_offset_translators: Added to the run's seed for the decoders' and
            discriminators' initialisation.
    """

    niter: int = bounded(300, ge=0)
    niter_decay: int = bounded(900, ge=0)
    lr: float = bounded(2e-4, gt=0)
    beta1: float = bounded(0.5, ge=0, lt=1)
    load_size: int = bounded(286, ge=4)
    crop_size: int = bounded(256, ge=4)
    pool_size: int = bounded(50, ge=0)
    lambda_cycle: float = bounded(10.0, ge=0)
    ndf: int = bounded(64, ge=1)
    disc_layers: int = bounded(4, ge=1)
    epoch_length: int = bounded(0, ge=0)
    init_from: str | None = None
    init_name: str = ""
    init_epoch: int = bounded(0, ge=0)
    require_init: bool = False
    checkpoint_every_steps: int = bounded(0, ge=0)
    seed_offset_translators: int = bounded(7, ge=0)

    def __post_init__(self) -> None:
        check_ranges(self, prefix="trainer.")
        if self.crop_size % 4:
            raise ConfigError(
                f"trainer.crop_size = {self.crop_size} is not divisible by 4 (the encoder "
                f"halves it twice); use e.g. {self.crop_size - self.crop_size % 4 or 4}."
            )
        if self.load_size < self.crop_size:
            raise ConfigError(
                f"trainer.load_size = {self.load_size} is smaller than trainer.crop_size = "
                f"{self.crop_size}; the crop is taken from the resized image."
            )
        if self.niter + self.niter_decay < 1:
            raise ConfigError("trainer.niter + trainer.niter_decay must be at least 1 epoch.")
        if self.init_epoch >= self.niter + self.niter_decay:
            raise ConfigError(
                f"trainer.init_epoch = {self.init_epoch} leaves no epoch to train (the run ends "
                f"at niter + niter_decay = {self.niter + self.niter_decay})."
            )

    @property
    def total_epochs(self) -> int:
        """``niter + niter_decay``: the last epoch's number."""
        return self.niter + self.niter_decay


def lr_at(config: DisamGanConfig, epoch: int, current: float) -> float:
    """The lr after ``update_hyperparams(epoch)``: unchanged until ``niter``, then linear."""
    if epoch > config.niter:
        return config.lr * (1.0 - (epoch - config.niter) / max(config.niter_decay, 1))
    return current


def ramp_at(config: DisamGanConfig, epoch: int) -> float:
    """The ramp after ``update_hyperparams(epoch)``: ``epoch / (niter + niter_decay)``."""
    return epoch / config.total_epochs


class ImagePool:
    """DISAM's ``util/image_pool.py``: a history of generated images, one per domain.

    Until full, a new image is stored and returned; afterwards, with probability 1/2 a random
    stored image is returned and replaced by the new one, else the new one is returned.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.images: list[torch.Tensor] = []

    def query(self, image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The image to show the discriminator for ``image`` ``[1, 3, H, W]`` (detached)."""
        image = image.detach()
        if self.size == 0:
            return image
        if len(self.images) < self.size:
            self.images.append(image.clone())
            return image
        if float(torch.rand((), generator=generator)) > 0.5:
            index = int(torch.randint(self.size, (), generator=generator))
            old = self.images[index].clone()
            self.images[index] = image.clone()
            return old
        return image

    def state(self) -> torch.Tensor:
        """The stored images as one tensor (``[0]`` when empty)."""
        return torch.cat(self.images) if self.images else torch.zeros(0)

    def load(self, stored: torch.Tensor) -> None:
        """Restore :meth:`state`."""
        self.images = [stored[i : i + 1].clone() for i in range(stored.shape[0])]


def _load_image(
    path: Path, load_size: int, crop_size: int, mirror: bool, generator: torch.Generator
) -> torch.Tensor:
    """Resize (shorter side, bicubic), random crop, optional mirror, normalise to [-1, 1]."""
    with Image.open(path) as raw:
        image = raw.convert("RGB")
    width, height = image.size
    scale = load_size / min(width, height)
    size = (max(crop_size, round(width * scale)), max(crop_size, round(height * scale)))
    image = image.resize(size, Image.Resampling.BICUBIC)
    top = int(torch.randint(size[1] - crop_size + 1, (), generator=generator))
    left = int(torch.randint(size[0] - crop_size + 1, (), generator=generator))
    array = np.asarray(image, dtype=np.float32)[top : top + crop_size, left : left + crop_size]
    tensor = torch.from_numpy(array.copy()).permute(2, 0, 1) / 255.0
    if mirror:
        tensor = tensor.flip(-1)
    return ((tensor - 0.5) / 0.5).unsqueeze(0)


def _domain_images(ctx: TrainContext, model: DisamModel) -> list[list[Path]]:
    """Training images per model domain (label: ``domain``, else ``condition``)."""
    records = [*ctx.train_split.database, *ctx.train_split.queries]
    per_domain: list[list[Path]] = [[] for _ in model.domains]
    for record in records:
        label = record.domain if record.domain is not None else record.condition
        if label is None:
            raise ConfigError(
                f"Training image {record.path} has neither a domain nor a condition; DISAM "
                "needs domain-labelled images (a dataset that provides domains or conditions)."
            )
        per_domain[model.domain_index(label)].append(record.path)
    empty = [model.domains[i] for i, images in enumerate(per_domain) if not images]
    if empty:
        have = sorted({str(r.domain or r.condition) for r in records})
        raise ConfigError(
            f"{ctx.train_split.name} has {len(have)} domains ({', '.join(have)}) but the DISAM "
            f"model has {len(model.domains)} ({', '.join(model.domains)}); no image of "
            f"{', '.join(empty)}. Set model.n_domains and model.domains to the dataset's."
        )
    return [sorted(images) for images in per_domain]


def _step_generator(seed: int, epoch: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003 + epoch) * 1_000_003 + step)


class _Nets:
    """The plexer: the retrieval model's encoders plus the trainer's decoders and discriminators."""

    def __init__(self, model: DisamModel, cfg: DisamGanConfig, seed: int, device: str) -> None:
        self.model = model
        self.encoders = model.encoders
        self.decoders, self.discriminators = build_translators(
            model.config, cfg.ndf, cfg.disc_layers, seed=seed + cfg.seed_offset_translators
        )
        self.decoders.to(device)
        self.discriminators.to(device)
        betas = (cfg.beta1, 0.999)
        self.g_opts = [
            torch.optim.Adam(
                itertools.chain(e.parameters(), d.parameters()), lr=cfg.lr, betas=betas
            )
            for e, d in zip(self.encoders, self.decoders, strict=True)
        ]
        self.d_opts = [
            torch.optim.Adam(d.parameters(), lr=cfg.lr, betas=betas) for d in self.discriminators
        ]

    def set_lr(self, lr: float) -> None:
        for opt in (*self.g_opts, *self.d_opts):
            for group in opt.param_groups:
                group["lr"] = lr

    def train(self) -> None:
        for part in (self.model, self.decoders, self.discriminators):
            part.train()

    def state(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "decoders": self.decoders.state_dict(),
            "discriminators": self.discriminators.state_dict(),
            "g_opts": [o.state_dict() for o in self.g_opts],
            "d_opts": [o.state_dict() for o in self.d_opts],
        }

    def load(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.decoders.load_state_dict(state["decoders"])
        self.discriminators.load_state_dict(state["discriminators"])
        for opt, saved in zip(
            (*self.g_opts, *self.d_opts), (*state["g_opts"], *state["d_opts"]), strict=True
        ):
            opt.load_state_dict(saved)


def _train_step(
    nets: _Nets,
    loss: DisamLoss,
    pools: Sequence[ImagePool],
    images: tuple[torch.Tensor, torch.Tensor],
    domains: tuple[int, int],
    lambda_cycle: float,
    generator: torch.Generator,
) -> dict[str, float]:
    """One G step and one D step (``optimize_parameters``); returns the logged losses."""
    real_a, real_b = images
    a, b = domains
    enc, dec, disc = nets.encoders, nets.decoders, nets.discriminators
    for d in (a, b):
        nets.g_opts[d].zero_grad(set_to_none=True)
    enc_a, enc_b = enc[a](real_a), enc[b](real_b)
    fake_b, fake_a = dec[b](enc_a), dec[a](enc_b)
    rec_enc_a, rec_enc_b = enc[b](fake_b), enc[a](fake_a)
    rec_a, rec_b = dec[a](rec_enc_a), dec[b](rec_enc_b)
    gan = gan_loss(disc[b](fake_b), real=True) + gan_loss(disc[a](fake_a), real=True)
    cycle = F.smooth_l1_loss(rec_a, real_a) + F.smooth_l1_loss(rec_b, real_b)
    terms = loss.terms(enc_a, enc_b, rec_enc_a, rec_enc_b)
    total_g = gan + lambda_cycle * cycle + loss.combine(terms)
    total_g.backward()
    for d in (a, b):
        nets.g_opts[d].step()
    for d in (a, b):
        nets.d_opts[d].zero_grad(set_to_none=True)
    pooled_b = pools[b].query(fake_b, generator)
    pooled_a = pools[a].query(fake_a, generator)
    loss_d_b = 0.5 * (gan_loss(disc[b](real_b), True) + gan_loss(disc[b](pooled_b), False))
    loss_d_a = 0.5 * (gan_loss(disc[a](real_a), True) + gan_loss(disc[a](pooled_a), False))
    (loss_d_a + loss_d_b).backward()
    for d in (a, b):
        nets.d_opts[d].step()
    values = {
        "loss_g": float(total_g.detach()),
        "gan": float(gan.detach()),
        "cycle": float(cycle.detach()),
        "loss_d": float((loss_d_a + loss_d_b).detach()),
    }
    values |= {k: float(v.detach()) for k, v in terms.items()}
    if not all(math.isfinite(v) for v in values.values()):
        raise UsageError(
            f"DISAM training diverged (non-finite loss {values}); lower trainer.lr or resume "
            "from an earlier checkpoint."
        )
    return values


def _emit(ctx: TrainContext, kind: str, payload: dict[str, Any]) -> None:
    now = datetime.now(UTC).isoformat(timespec="seconds")
    ctx.emit(RunEvent(kind, ctx.run_id, payload, now))


def fit(ctx: TrainContext) -> TrainOutcome:
    """Train the encoders of ``ctx.model`` with DISAM's GAN loop; returns the last weights.

    Raises:
        UsageError: Under torchrun (this loop runs in one process), or a diverged loss.
        ConfigError: Bad options, fewer than two domains, or a dataset whose domains do not
            match the model's, before any step.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise UsageError(
            "The disam-gan trainer runs in one process (batch 1, two domains per step); "
            "start it without torchrun."
        )
    cfg: DisamGanConfig = ctx.config
    model = ctx.model
    if isinstance(model, DisamC2FModel):
        return _assemble_c2f(ctx, model)
    if not isinstance(model, DisamModel) or not isinstance(ctx.loss, DisamLoss):
        raise ConfigError("The disam-gan trainer trains a 'disam' model with the 'disam' loss.")
    if cfg.require_init and not cfg.init_from and not ctx.resume:
        raise ConfigError(
            "This profile fine-tunes from the authors' epoch-300 translation model: set "
            "trainer.init_from to its folder or archive (and trainer.init_name, "
            "trainer.init_epoch=300), or use the quick profile."
        )
    images = _domain_images(ctx, model)
    device = ctx.device
    model.to(device)
    torch.manual_seed(ctx.seed)
    nets = _Nets(model, cfg, ctx.seed, device)
    loss = ctx.loss
    pools = [ImagePool(cfg.pool_size) for _ in images]
    ckpt_dir = ctx.run_dir / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    epoch_length = cfg.epoch_length or max(len(i) for i in images)
    lr, ramp = cfg.lr, 1.0
    epoch, position, global_step = cfg.init_epoch + 1, 0, 0
    history: list[dict[str, Any]] = []
    if ctx.resume:
        state, _meta = load_train_state(ckpt_dir / "last.pt")
        nets.load(state["nets"])
        for pool, stored in zip(pools, state["pools"], strict=True):
            pool.load(stored)
        loop = state["loop"]
        lr, ramp = float(loop["lr"]), float(loop["ramp"])
        epoch, position, global_step = int(loop["epoch"]), int(loop["position"]), int(loop["step"])
        history = list(loop["history"])
        restore_rng_state(state["rng"])
        log.info("Resumed DISAM training at epoch %d, step %d.", epoch, position)
    elif cfg.init_from:
        with opened(cfg.init_from) as root:
            files = find_network_files(root, cfg.init_name, cfg.init_epoch)
            load_plexer(files, nets.encoders, nets.decoders, nets.discriminators)
        lr, ramp = lr_at(cfg, cfg.init_epoch, lr), ramp_at(cfg, cfg.init_epoch)
        log.info("Fine-tuning from %s, epoch %d.", files.folder, cfg.init_epoch)
    nets.set_lr(lr)
    loss.ramp = ramp
    nets.train()

    def save(next_epoch: int, next_position: int) -> Path:
        state = {
            "nets": nets.state(),
            "pools": [p.state() for p in pools],
            "rng": capture_rng_state(),
            "loop": {
                "epoch": next_epoch,
                "position": next_position,
                "step": global_step,
                "lr": lr,
                "ramp": ramp,
                "history": history,
            },
        }
        meta = {
            "method": ctx.method,
            "epoch": next_epoch,
            "step": global_step,
            "config": dict(ctx.config_dict),
        }
        path = save_train_state(ckpt_dir / "last.pt", state, meta)
        _emit(
            ctx, "checkpoint-saved", {"path": str(path), "epoch": next_epoch, "step": global_step}
        )
        return path

    n_domains = len(images)
    while epoch <= cfg.total_epochs:
        sums: dict[str, float] = {}
        while position < epoch_length:
            generator = _step_generator(ctx.seed, epoch, position)
            a = int(torch.randint(n_domains, (), generator=generator))
            b = int(torch.randint(n_domains - 1, (), generator=generator))
            b += b >= a
            path_a = images[a][int(torch.randint(len(images[a]), (), generator=generator))]
            path_b = images[b][int(torch.randint(len(images[b]), (), generator=generator))]
            batch = (
                _load_image(path_a, cfg.load_size, cfg.crop_size, False, generator).to(device),
                _load_image(path_b, cfg.load_size, cfg.crop_size, True, generator).to(device),
            )
            values = _train_step(nets, loss, pools, batch, (a, b), cfg.lambda_cycle, generator)
            for key, value in values.items():
                sums[key] = sums.get(key, 0.0) + value
            position += 1
            global_step += 1
            if cfg.checkpoint_every_steps and global_step % cfg.checkpoint_every_steps == 0:
                save(epoch, position)
        means = {k: v / max(position, 1) for k, v in sums.items()}
        record = {"epoch": epoch, "loss": means.get("loss_g", 0.0), "lr": lr, "ramp": ramp, **means}
        history.append(record)
        lr, ramp = lr_at(cfg, epoch, lr), ramp_at(cfg, epoch)
        nets.set_lr(lr)
        loss.ramp = ramp
        epoch, position = epoch + 1, 0
        save(epoch, position)
        _emit(ctx, "epoch-ended", record)
        log.info(
            "DISAM epoch %d: loss G %.4f, D %.4f",
            record["epoch"],
            record.get("loss_g", 0),
            record.get("loss_d", 0),
        )
    final = save_train_state(
        ckpt_dir / "final.pt",
        {"model": model.state_dict()},
        {"method": ctx.method, "kind": "weights", "epoch": cfg.total_epochs, "step": global_step},
    )
    _emit(ctx, "checkpoint-saved", {"path": str(final), "step": global_step})
    return TrainOutcome(
        run_dir=ctx.run_dir,
        best_checkpoint=None,
        final_checkpoint=final,
        history=history,
        config_dict=ctx.config_dict,
    )


COARSE_METHOD, FINE_METHOD = "disam-coarse", "disam-fine"
"""The methods whose runs a coarse-to-fine model reuses."""


def sibling_weights(run_dir: Path, method: str) -> Path:
    """The final weights of the latest finished run of ``method`` beside ``run_dir``.

    Runs live in ``<runs dir>/<method>/<timestamp>/``; the latest timestamp whose
    ``checkpoints/final.pt`` exists is taken.

    Raises:
        ConfigError: No finished run of ``method``.
    """
    folder = run_dir.parent.parent / method
    finished = sorted(p for p in folder.glob("*/checkpoints/final.pt")) if folder.is_dir() else []
    if not finished:
        raise ConfigError(
            f"The coarse-to-fine model reuses the weights of a finished {method} run, but "
            f"{folder} holds none; train {COARSE_METHOD} and {FINE_METHOD} first (e.g. "
            f"vpr-bench run --methods {COARSE_METHOD},{FINE_METHOD},disam ...)."
        )
    return finished[-1]


def _assemble_c2f(ctx: TrainContext, model: DisamC2FModel) -> TrainOutcome:
    """``disam``: no training; the coarse and fine models are the latest runs' weights."""
    for part, method in ((model.coarse, COARSE_METHOD), (model.fine, FINE_METHOD)):
        path = sibling_weights(ctx.run_dir, method)
        state, _meta = load_train_state(path)
        weights = state.get("model")
        if not isinstance(weights, dict):
            raise ConfigError(f"{path} holds no model weights.")
        try:
            part.load_state_dict(weights, strict=True)
        except RuntimeError as exc:
            first = str(exc).splitlines()[0]
            raise ConfigError(
                f"{path} ({method}) does not fit the coarse-to-fine model's "
                f"{'coarse' if part is model.coarse else 'fine'} part: {first}; train it with "
                "the same model.* options."
            ) from None
        log.info("disam: %s weights from %s", method, path)
        _emit(ctx, "checkpoint-loaded", {"path": str(path), "method": method})
    ckpt_dir = ctx.run_dir / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    final = save_train_state(
        ckpt_dir / "final.pt",
        {"model": model.state_dict()},
        {"method": ctx.method, "kind": "weights", "reused": [COARSE_METHOD, FINE_METHOD]},
    )
    return TrainOutcome(
        run_dir=ctx.run_dir,
        best_checkpoint=None,
        final_checkpoint=final,
        config_dict=ctx.config_dict,
    )
