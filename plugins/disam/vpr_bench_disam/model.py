"""The ``disam`` retrieval model: one ComboGAN encoder per domain (methods.md A.1, A.5).

The descriptor of an image of domain d is its code ``E_d(x)`` (no pooling), compared by
``mcos`` or ``cos`` (:mod:`vpr_bench_disam.metrics`). Only the encoders are part of the
retrieval model; decoders and discriminators are built by :func:`build_translators` for the
trainer, and live in its state.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from vpr_bench.errors import ConfigError
from vpr_bench_disam.config import DisamC2FConfig, DisamConfig
from vpr_bench_disam.metrics import descriptor
from vpr_bench_disam.networks import Decoder, Discriminator, Encoder, init_weights

__all__ = [
    "DisamC2FModel",
    "DisamModel",
    "build_disam",
    "build_disam_c2f",
    "build_translators",
    "check_domains",
]


class DisamModel(nn.Module):
    """n per-domain encoders; ``forward(images, domain)`` gives unit descriptors.

    Args:
        config: The model options.

    Attributes:
        encoders: ``encoders[i]`` is ``E_i`` (``<epoch>_net_G<i>.pth`` of the reference).
        domains: The domain labels, reference first.
        descriptor_dim: ``C * (image_size / 4)^2`` (1,048,576 for the released models).
    """

    def __init__(self, config: DisamConfig | None = None) -> None:
        super().__init__()
        self.config = config or DisamConfig()
        cfg = self.config
        self.encoders = nn.ModuleList(
            Encoder(cfg.ngf, cfg.encoder_blocks) for _ in range(cfg.n_domains)
        )
        self.domains: tuple[str, ...] = cfg.domain_labels
        self.descriptor_dim = math.prod(cfg.latent_shape)

    def domain_index(self, domain: int | str | None) -> int:
        """The encoder index of ``domain`` (a label, an index, or None for the reference).

        Raises:
            ConfigError: An unknown label or an index out of range; the message lists the
                model's domains.
        """
        if domain is None:
            return 0
        if isinstance(domain, int) and not isinstance(domain, bool):
            if 0 <= domain < len(self.domains):
                return domain
        elif str(domain) in self.domains:
            return self.domains.index(str(domain))
        raise ConfigError(
            f"domain {domain!r} is not one of this DISAM model's {len(self.domains)} domains "
            f"({', '.join(self.domains)}; the first is the reference); set model.domains to the "
            "dataset's domain labels, reference first."
        )

    def resize(self, images: torch.Tensor) -> torch.Tensor:
        """Images resized to ``image_size`` squared (bicubic, antialiased), as at test time."""
        size = self.config.image_size
        if images.shape[-2:] == (size, size):
            return images
        return F.interpolate(
            images, size=(size, size), mode="bicubic", align_corners=False, antialias=True
        )

    def latent(self, images: torch.Tensor, domain: int | str | None = None) -> torch.Tensor:
        """The codes ``E_d(images)``, ``[B, C, S/4, S/4]`` (images resized to S first)."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"DisamModel expects images [B, 3, H, W], got {tuple(images.shape)}.")
        encoder = self.encoders[self.domain_index(domain)]
        return encoder(self.resize(images))  # type: ignore[no-any-return]

    def forward(self, images: torch.Tensor, domain: int | str | None = None) -> torch.Tensor:
        """Unit ``[B, descriptor_dim]`` descriptors of images of one ``domain``."""
        return descriptor(self.latent(images, domain), self.config.descriptor)


def build_disam(config: DisamConfig | None = None) -> DisamModel:
    """Build the encoders (ComboGAN init, N(0, 0.02) convolutions, seeded by ``config.seed``)."""
    config = config or DisamConfig()
    with torch.random.fork_rng(devices=[]):
        if config.seed is not None:
            torch.manual_seed(config.seed)
        model = DisamModel(config)
        init_weights(model)
    if config.same_init:
        _copy_first_encoder(model)
    return model


def _copy_first_encoder(model: DisamModel) -> None:
    """Give every encoder encoder 0's weights (``model.same_init``)."""
    state = model.encoders[0].state_dict()
    for encoder in model.encoders[1:]:
        encoder.load_state_dict(state)


class DisamC2FModel(nn.Module):
    """Coarse-to-fine DISAM (``--use_two_stage``): coarse descriptors search, fine re-rank.

    The harness's two-stage evaluation (``vpr_bench.eval.two_stage``) re-ranks each query's
    ``top_n`` coarse neighbours by the fine model's descriptors.

    Args:
        config: The options (shared shape; coarse ``descriptor``, ``fine_descriptor``,
            ``top_n``).

    Attributes:
        coarse: The coarse model (``CMU_coarse``).
        fine: The fine model (``CMU_fine``).
    """

    def __init__(self, config: DisamC2FConfig | None = None) -> None:
        super().__init__()
        self.config = config or DisamC2FConfig()
        base = {f.name: getattr(self.config, f.name) for f in dataclasses.fields(DisamConfig)}
        self.coarse = DisamModel(DisamConfig(**base))
        self.fine = DisamModel(DisamConfig(**{**base, "descriptor": self.config.fine_descriptor}))
        self.domains = self.coarse.domains
        self.descriptor_dim = self.coarse.descriptor_dim
        self.second_stage_dim = self.fine.descriptor_dim
        self.top_n = self.config.top_n

    def forward(self, images: torch.Tensor, domain: int | str | None = None) -> torch.Tensor:
        """The coarse descriptors (first stage)."""
        return self.coarse(images, domain)  # type: ignore[no-any-return]

    def second_stage(self, images: torch.Tensor, domain: int | str | None = None) -> torch.Tensor:
        """The fine descriptors (second stage)."""
        return self.fine(images, domain)  # type: ignore[no-any-return]


def build_disam_c2f(config: DisamC2FConfig | None = None) -> DisamC2FModel:
    """Build both models (the fine one seeded with ``seed + 1``)."""
    config = config or DisamC2FConfig()
    with torch.random.fork_rng(devices=[]):
        if config.seed is not None:
            torch.manual_seed(config.seed)
        model = DisamC2FModel(config)
        init_weights(model.coarse)
        if config.seed is not None:
            torch.manual_seed(config.seed + 1)
        init_weights(model.fine)
    if config.same_init:
        _copy_first_encoder(model.coarse)
        _copy_first_encoder(model.fine)
    return model


def build_translators(
    config: DisamConfig, ndf: int = 64, disc_layers: int = 4, seed: int | None = None
) -> tuple[nn.ModuleList, nn.ModuleList]:
    """The trainer's per-domain decoders ``G_d`` and discriminators ``D_d`` (ComboGAN init).

    Args:
        config: The model options (domains, ngf, residual blocks).
        ndf: Width of the discriminators' first stage (64).
        disc_layers: ``--netD_n_layers`` (4).
        seed: Seed of their initialisation (None: the global torch RNG).

    Returns:
        ``(decoders, discriminators)``, one of each per domain.
    """
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        decoders = nn.ModuleList(
            Decoder(config.ngf, config.decoder_blocks) for _ in range(config.n_domains)
        )
        discriminators = nn.ModuleList(
            Discriminator(ndf, disc_layers) for _ in range(config.n_domains)
        )
        init_weights(decoders)
        init_weights(discriminators)
    return decoders, discriminators


def check_domains(model: DisamModel, labels: Sequence[str], source: str) -> None:
    """Refuse a dataset whose domain count differs from the model's (one line naming both).

    Raises:
        ConfigError: ``len(labels) != n_domains``.
    """
    if len(labels) != len(model.domains):
        raise ConfigError(
            f"{source} has {len(labels)} domains ({', '.join(labels)}) but the DISAM model has "
            f"{len(model.domains)}; set model.n_domains (and model.domains) to match, or map "
            "the dataset's domains onto the model's."
        )
