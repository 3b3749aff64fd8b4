"""Options of the ``daco`` model (``model.*``) and DaCo's per-dataset input normalisers."""

from __future__ import annotations

from dataclasses import dataclass

from vpr_bench import bounded
from vpr_bench.errors import ConfigError

__all__ = ["BACKBONES", "NORMALIZERS", "DaCoConfig", "normalizer_stats"]

NORMALIZERS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    # DaCo utils.py:10-12 (HEAD 451e13d): mean, std of [0, 1] RGB per dataset.
    "tokyo": ((0.334, 0.332, 0.320), (0.241, 0.237, 0.242)),
    "cityscapes": ((0.401, 0.437, 0.401), (0.186, 0.187, 0.187)),
    "synthia": ((0.244, 0.221, 0.177), (0.192, 0.174, 0.144)),
    # torchvision's ImageNet statistics.
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    # Measured on synthcity-small (seed 0) train images, all 3120 (database, queries of every
    # condition, day/night pairs): per-channel mean and std of every [0, 1] pixel.
    "synthcity": ((0.395, 0.406, 0.385), (0.245, 0.229, 0.240)),
}
"""``model.normalizer`` names: DaCo normalises each dataset by its own statistics."""

BACKBONES = ("resnet50", "resnet18", "tiny")
"""``model.backbone`` names: DaCo's ResNet-50, a ResNet-18, the harness's tiny trunk (CPU)."""


@dataclass
class DaCoConfig:
    """Options of the ``daco`` model.

    Attributes:
        backbone: ``resnet50`` (DaCo, 2048-d), ``resnet18`` (512-d) or ``tiny`` (the harness's
            four-layer trunk, 4 x ``tiny_width`` channels). Always randomly initialised: DaCo
            trains from scratch (methods.md B.7 item 2).
        tiny_width: First-layer channels of the tiny trunk.
        tiny_stem_norm: Normalisation after the tiny trunk's first conv: ``batch`` or
            ``instance`` (per image, as NetVLAD's quick profile; see
            :class:`vpr_bench.models.TinyGeMConfig`).
        hidden_dim: Width of the projection head's hidden layer (``--hidden_dim`` 512).
        proj_dim: Width of the projection (HEAD 2048; the ICMR 2021 code 128).
        normalizer: Which mean/std normalise the model's [0, 1] input: ``tokyo``,
            ``cityscapes``, ``synthia`` (DaCo's), ``imagenet`` or ``synthcity``.
    """

    backbone: str = "resnet50"
    tiny_width: int = bounded(16, ge=1)
    tiny_stem_norm: str = "batch"
    hidden_dim: int = bounded(512, ge=1)
    proj_dim: int = bounded(2048, ge=1)
    normalizer: str = "imagenet"


def normalizer_stats(
    name: str,
) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """The mean and std of ``model.normalizer`` ``name``.

    Raises:
        ConfigError: ``name`` is not one of :data:`NORMALIZERS`.
    """
    if name not in NORMALIZERS:
        raise ConfigError(
            f"model.normalizer {name!r} is unknown: use one of {', '.join(NORMALIZERS)} "
            "(--set model.normalizer=tokyo)."
        )
    return NORMALIZERS[name]
