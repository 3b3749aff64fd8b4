"""Options and schedules of the ``disam-gan`` trainer (methods.md A.3-A.4).

:class:`DisamGanConfig` holds the ``trainer.*`` keys; :func:`lr_at` and :func:`ramp_at` are
DISAM's ``update_hyperparams``: the learning rate stays at ``lr`` for ``niter`` epochs and then
falls linearly to 0 over ``niter_decay``; the ramped loss weights grow as ``epoch / total``.
"""

from __future__ import annotations

from dataclasses import dataclass

from vpr_bench import bounded, check_ranges
from vpr_bench.errors import ConfigError

__all__ = ["DisamGanConfig", "lr_at", "ramp_at"]


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
