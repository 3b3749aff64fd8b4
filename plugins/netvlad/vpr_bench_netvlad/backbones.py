"""Convolutional trunks for NetVLAD: VGG16 to conv5_3, torchvision ResNets, the tiny trunk.

Weights are never downloaded: ``pretrained="auto"`` uses torchvision's cache dir only when the
ImageNet file is already there; a path loads that file; otherwise the trunk is randomly
initialised and that is logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from vpr_bench.errors import ConfigError, DataError
from vpr_bench.weights import safe_load

__all__ = ["Trunk", "VGG16_CUTS", "build_trunk", "freeze_before"]

log = logging.getLogger(__name__)

VGG16_CUTS = {"conv5": 24, "conv4": 17, "conv3": 10, "conv2": 5, "full": 0}
"""``train_layers`` -> index of the first trainable module of the 29-module VGG16 trunk
(OpenIBL ``ibl/models/vgg.py``; methods.md 1.1)."""

_RESNET_STAGES = {"conv2": "layer1", "conv3": "layer2", "conv4": "layer3", "conv5": "layer4"}
_RESNET_DIMS = {
    ("resnet18", "conv4"): 256,
    ("resnet18", "conv5"): 512,
    ("resnet50", "conv4"): 1024,
    ("resnet50", "conv5"): 2048,
}


@dataclass
class Trunk:
    """A feature extractor and what the model needs to know about it.

    Attributes:
        module: ``[B, 3, H, W] -> [B, dim, h, w]``.
        dim: Output channels.
        pretrained_from: Where the weights came from (``None`` when randomly initialised).
    """

    module: nn.Sequential
    dim: int
    pretrained_from: str | None


def _weights_file(arch: str) -> str:
    """File name of torchvision's ImageNet weights for ``arch`` (no download)."""
    from torchvision import models

    weights = {
        "vgg16": models.VGG16_Weights.IMAGENET1K_V1,
        "resnet18": models.ResNet18_Weights.IMAGENET1K_V1,
        "resnet50": models.ResNet50_Weights.IMAGENET1K_V1,
    }[arch]
    return Path(weights.url).name


def _load_state_file(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise ConfigError(
            f"Pretrained weights file {path} does not exist; pass an existing file, 'auto' "
            "(torchvision's cache when present) or None (random init)."
        )
    try:
        state = safe_load(path)
    except DataError as exc:
        raise ConfigError(f"Cannot read pretrained weights {path}: {exc}") from exc
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ConfigError(
            f"Pretrained weights {path} hold a {type(state).__name__}, not a state dict."
        )
    return {k.removeprefix("module."): v for k, v in state.items() if isinstance(v, torch.Tensor)}


def _load_into(
    trunk: nn.Sequential, state: dict[str, torch.Tensor], prefixes: tuple[str, ...], source: Path
) -> None:
    """Load the trunk's tensors from ``state`` under the first prefix that provides them all."""
    wanted = trunk.state_dict()
    for prefix in prefixes:
        found = {k: state[prefix + k] for k in wanted if prefix + k in state}
        if len(found) == len(wanted):
            bad = [
                f"{k}: file {tuple(found[k].shape)} vs model {tuple(v.shape)}"
                for k, v in wanted.items()
                if found[k].shape != v.shape
            ]
            if bad:
                raise ConfigError(
                    f"Pretrained weights {source} do not fit the trunk: " + "; ".join(bad)
                )
            trunk.load_state_dict(found, strict=True)
            return
    raise ConfigError(
        f"Pretrained weights {source} do not contain the trunk's tensors (looked for keys like "
        f"{', '.join(p + next(iter(wanted)) for p in prefixes)})."
    )


def _resolve_pretrained(arch: str, pretrained: str | None) -> Path | None:
    if pretrained is None or pretrained.lower() in ("none", ""):
        return None
    if pretrained == "auto":
        if arch == "tiny":
            return None
        cached = Path(torch.hub.get_dir()) / "checkpoints" / _weights_file(arch)
        return cached if cached.is_file() else None
    return Path(pretrained).expanduser()


def _vgg16() -> tuple[nn.Sequential, tuple[str, ...]]:
    """torchvision's ``vgg16().features`` cut to its first 29 modules (conv5_3, pre-ReLU).

    Built from torchvision's own layer list with the initialisation ``VGG.__init__`` applies to
    convolutions, without allocating the 120 M-parameter classifier that is thrown away.
    """
    from torchvision.models import vgg

    features = vgg.make_layers(vgg.cfgs["D"], batch_norm=False)
    for module in features.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.constant_(module.bias, 0)
    return nn.Sequential(*list(features.children())[:29]), ("features.", "", "base_model.base.")


def _resnet(arch: str, cut: str) -> tuple[nn.Sequential, tuple[str, ...]]:
    from torchvision import models

    net = models.resnet18(weights=None) if arch == "resnet18" else models.resnet50(weights=None)
    names = ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3"]
    if cut == "conv5":
        names.append("layer4")
    trunk = nn.Sequential()
    for name in names:
        trunk.add_module(name, getattr(net, name))
    return trunk, ("", "base.")


def _tiny(width: int, stem_norm: str) -> tuple[nn.Sequential, tuple[str, ...]]:
    from vpr_bench.models import TinyGeM, TinyGeMConfig

    stem = "instance" if stem_norm == "instance" else "same"
    net = TinyGeM(TinyGeMConfig(width=width, dim=0, seed=None, stem_norm=stem))
    return net.features, ("features.", "")


def build_trunk(
    backbone: str,
    pretrained: str | None,
    tiny_width: int = 16,
    seed: int | None = 0,
    *,
    tiny_stem_norm: str = "batch",
) -> Trunk:
    """Build a trunk, loading pretrained weights where available.

    Args:
        backbone: ``vgg16``, ``resnet18-conv4|conv5``, ``resnet50-conv4|conv5`` or ``tiny``.
        pretrained: ``"auto"``, a file path, or None (see :class:`NetVLADConfig`).
        tiny_width: Width of the tiny trunk.
        seed: Seed of the random initialisation (None: global RNG).
        tiny_stem_norm: ``"batch"`` or ``"instance"`` after the tiny trunk's first conv.

    Returns:
        The trunk with its output width and the source of its weights.

    Raises:
        ConfigError: Unknown backbone, missing or unfitting weights file.
    """
    arch, _, cut = backbone.partition("-")
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        if arch == "vgg16" and not cut:
            module, prefixes = _vgg16()
            dim = 512
        elif arch in ("resnet18", "resnet50") and cut in ("conv4", "conv5"):
            module, prefixes = _resnet(arch, cut)
            dim = _RESNET_DIMS[(arch, cut)]
        elif arch == "tiny" and not cut:
            module, prefixes = _tiny(tiny_width, tiny_stem_norm)
            dim = 4 * tiny_width
        else:
            raise ConfigError(
                f"Unknown NetVLAD backbone {backbone!r}; choose vgg16, resnet18-conv4, "
                "resnet18-conv5, resnet50-conv4, resnet50-conv5 or tiny."
            )
    source = _resolve_pretrained(arch, pretrained)
    if source is None:
        _announce_random_init(backbone, pretrained, arch)
        return Trunk(module, dim, None)
    _load_into(module, _load_state_file(source), prefixes, source)
    log.info("NetVLAD backbone %s: weights loaded from %s", backbone, source)
    if pretrained == "auto":
        log.warning(
            "Loaded torchvision ImageNet weights, which expect ImageNet mean/std input; the "
            "netvlad model feeds MatConvNet-style input (0..255 minus mean). For the paper's "
            "weights pass pretrained=<vd16_offtheshelf_conv5_3_max.pth>."
        )
    return Trunk(module, dim, str(source))


_ANNOUNCED: set[tuple[str, str | None]] = set()
"""Backbones whose random initialisation was already logged in this process."""


def _announce_random_init(backbone: str, pretrained: str | None, arch: str) -> None:
    """Say once per process that a trunk starts from random weights.

    INFO when the config asked for it (``pretrained=None``, e.g. the quick profiles' tiny
    trunk); a WARNING when weights were wanted but not found (``auto``).
    """
    if (backbone, pretrained) in _ANNOUNCED:
        return
    _ANNOUNCED.add((backbone, pretrained))
    if pretrained is None:
        log.info("NetVLAD backbone %s: random init (pretrained=None).", backbone)
        return
    log.warning(
        "NetVLAD backbone %s: no pretrained weights (pretrained=%r%s); using RANDOM init.",
        backbone,
        pretrained,
        ", not in torchvision's cache" if pretrained == "auto" and arch != "tiny" else "",
    )


def freeze_before(trunk: nn.Sequential, backbone: str, train_layers: str) -> list[nn.Module]:
    """Freeze every trunk module before ``train_layers``; return the frozen modules.

    Raises:
        ConfigError: ``train_layers`` names a block the trunk does not have.
    """
    children = list(trunk.children())
    if train_layers == "full" or backbone == "tiny":
        return []
    if backbone == "vgg16":
        cut = VGG16_CUTS[train_layers]
    else:
        names = [name for name, _ in trunk.named_children()]
        stage = _RESNET_STAGES[train_layers]
        if stage not in names:
            raise ConfigError(
                f"train_layers={train_layers!r} is not part of backbone {backbone!r} (it ends at "
                f"{names[-1]}); choose an earlier block or 'full'."
            )
        cut = names.index(stage)
    frozen = children[:cut]
    for module in frozen:
        for param in module.parameters():
            param.requires_grad_(False)
    return frozen
