"""Options of the ``disam`` retrieval model, the ``model.*`` keys (no torch import here).

Defaults are the released CMU-Seasons models (methods.md A.1, ``manifest_disam.json``): 12
domains, ``ngf`` 64, ``netG_n_blocks`` 9 (4 encoder and 5 decoder residual blocks), 256x256
input, so the latent code (and the descriptor) is 256x64x64 = 1,048,576 values.
"""

from __future__ import annotations

from dataclasses import dataclass

from vpr_bench import bounded, check_ranges
from vpr_bench.errors import ConfigError
from vpr_bench_disam.metrics import DESCRIPTORS

__all__ = ["DisamC2FConfig", "DisamConfig"]


@dataclass
class DisamConfig:
    """Options of the DISAM encoders.

    Attributes:
        n_domains: Environments, one encoder each (12 for CMU-Seasons, 10 for RobotCar); at
            least 2.
        domains: The domain labels, reference first (the database domain); empty: ``"0"``,
            ``"1"``, ... (CMU/RobotCar's folder indices). An image's ``domain`` (else its
            ``condition``) picks its encoder.
        ngf: Width of the encoder's first convolution (64); the code has ``4 * ngf`` channels.
        netg_blocks: ``--netG_n_blocks`` (9): ``netg_blocks // 2`` residual blocks in each
            encoder, the rest in each decoder.
        image_size: Side of the square input (256); forward resizes images to it (bicubic), as
            the reference's test transform squashes every image to 256x256. Divisible by 4.
        descriptor: ``"mean-cos"`` (each channel map L2-normalised, divided by sqrt(C): L2
            ranking = -mcos, the coarse model's metric) or ``"cos"`` (the flattened code
            L2-normalised: the fine model's metric).
        seed: Seed of the random initialisation (None: the global torch RNG).
        same_init: Start every domain's encoder from the same random weights (encoder 0's).
            The reference initialises them independently and fine-tunes a pretrained
            translation model; a CPU profile trained from scratch for minutes starts its
            domains in one descriptor space instead.
    """

    n_domains: int = bounded(12, ge=2)
    domains: tuple[str, ...] = ()
    ngf: int = bounded(64, ge=1)
    netg_blocks: int = bounded(9, ge=0)
    image_size: int = bounded(256, ge=4)
    descriptor: str = "mean-cos"
    seed: int | None = bounded(0, ge=0)
    same_init: bool = False

    def __post_init__(self) -> None:
        check_ranges(self, prefix="model.")
        if self.descriptor not in DESCRIPTORS:
            raise ConfigError(
                f"model.descriptor = {self.descriptor!r} is not valid; choose one of: "
                f"{', '.join(DESCRIPTORS)}."
            )
        if self.image_size % 4:
            raise ConfigError(
                f"model.image_size = {self.image_size} is not divisible by 4 (the encoder "
                f"halves it twice); use e.g. {self.image_size - self.image_size % 4 or 4}."
            )
        self.domains = tuple(str(d) for d in self.domains)
        if self.domains and len(self.domains) != self.n_domains:
            raise ConfigError(
                f"model.domains lists {len(self.domains)} labels but model.n_domains is "
                f"{self.n_domains}; give one label per domain, the reference first."
            )
        if len(set(self.domains)) != len(self.domains):
            raise ConfigError(f"model.domains {list(self.domains)} repeats a label.")

    @property
    def domain_labels(self) -> tuple[str, ...]:
        """The labels of the domains, reference first."""
        return self.domains or tuple(str(i) for i in range(self.n_domains))

    @property
    def encoder_blocks(self) -> int:
        """Residual blocks per encoder (``netg_blocks // 2``)."""
        return self.netg_blocks // 2

    @property
    def decoder_blocks(self) -> int:
        """Residual blocks per decoder (the rest)."""
        return self.netg_blocks - self.netg_blocks // 2

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of the code: ``(4 ngf, image_size / 4, image_size / 4)``."""
        side = self.image_size // 4
        return (4 * self.ngf, side, side)


@dataclass
class DisamC2FConfig(DisamConfig):
    """Options of ``disam-c2f``: a coarse and a fine DISAM model of one shape (A.5).

    ``descriptor`` is the coarse model's (``mean-cos`` in the README's command); the other
    structural options are shared.

    Attributes:
        fine_descriptor: The fine model's comparison (``cos``: the README's command leaves
            ``--meancos_finer`` off).
        top_n: Coarse neighbours the fine model re-ranks (the README's ``--top_n 3``).
    """

    fine_descriptor: str = "cos"
    top_n: int = bounded(3, ge=1)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.fine_descriptor not in DESCRIPTORS:
            raise ConfigError(
                f"model.fine_descriptor = {self.fine_descriptor!r} is not valid; choose one of: "
                f"{', '.join(DESCRIPTORS)}."
            )
