"""The ``disam-gan`` trainer: DISAM's ComboGAN loop (methods.md A.2-A.4, PART E).

Its options and schedules are in :mod:`.gan_options`, its images and pools in
:mod:`.gan_data`, and the coarse-to-fine ``disam`` assembly in :mod:`.c2f_assembly`; they are
re-exported here.

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
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from vpr_bench.errors import ConfigError, UsageError
from vpr_bench.train import (
    TrainContext,
    TrainOutcome,
    capture_rng_state,
    load_train_state,
    restore_rng_state,
    save_train_state,
)
from vpr_bench_disam.c2f_assembly import assemble_c2f, emit, sibling_weights
from vpr_bench_disam.checkpoint import find_network_files, load_plexer, opened
from vpr_bench_disam.gan_data import ImagePool, domain_images, load_image
from vpr_bench_disam.gan_options import DisamGanConfig, lr_at, ramp_at
from vpr_bench_disam.loss import DisamLoss
from vpr_bench_disam.model import DisamC2FModel, DisamModel, build_translators
from vpr_bench_disam.networks import gan_loss

__all__ = ["DisamGanConfig", "ImagePool", "fit", "lr_at", "ramp_at", "sibling_weights"]

log = logging.getLogger(__name__)


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
        return assemble_c2f(ctx, model)
    if not isinstance(model, DisamModel) or not isinstance(ctx.loss, DisamLoss):
        raise ConfigError("The disam-gan trainer trains a 'disam' model with the 'disam' loss.")
    if cfg.require_init and not cfg.init_from and not ctx.resume:
        raise ConfigError(
            "This profile fine-tunes from the authors' epoch-300 translation model: set "
            "trainer.init_from to its folder or archive (and trainer.init_name, "
            "trainer.init_epoch=300), or use the quick profile."
        )
    images = domain_images(ctx, model)
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
        emit(ctx, "checkpoint-saved", {"path": str(path), "epoch": next_epoch, "step": global_step})
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
                load_image(path_a, cfg.load_size, cfg.crop_size, False, generator).to(device),
                load_image(path_b, cfg.load_size, cfg.crop_size, True, generator).to(device),
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
        emit(ctx, "epoch-ended", record)
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
    emit(ctx, "checkpoint-saved", {"path": str(final), "step": global_step})
    return TrainOutcome(
        run_dir=ctx.run_dir,
        best_checkpoint=None,
        final_checkpoint=final,
        history=history,
        config_dict=ctx.config_dict,
    )
