"""VainF's DeepLabV3+ with a MobileNetV2 backbone (the original's semantic guidance network).

Rebuilt module for module from VainF/DeepLabV3Plus-Pytorch so that its Cityscapes checkpoint
(``best_deeplabv3plus_mobilenet_cityscapes_os16.pth``, weights under ``model_state``) loads
strictly: network/backbone/mobilenetv2.py (inverted residuals that pad their *input* with
``fixed_padding(3, dilation)`` and then run unpadded convolutions; a first 3x3 stride-2 conv
without padding), network/modeling.py:_segm_mobilenet (``low_level_features`` = features[:4],
24 channels at stride 4; ``high_level_features`` = features[4:-1], 320 channels; their keys
keep the original indices), network/_deeplab.py (ASPP with rates 6/12/18 at output stride 16,
``DeepLabHeadV3Plus``) and network/utils.py (logits resized bilinearly to the input). Not a
torchvision model: torchvision's MobileNetV2 and DeepLab heads have other keys and padding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["DeepLabV3PlusMobileNet", "build_deeplabv3plus_mobilenet"]

_SETTING = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
            (6, 160, 3, 2), (6, 320, 1, 1))  # fmt: skip
"""MobileNetV2's (expansion t, channels c, repeats n, stride s) groups."""


def _conv_bn_relu6(c_in: int, c_out: int, kernel: int = 3, stride: int = 1, dilation: int = 1,
                   groups: int = 1) -> nn.Sequential:  # fmt: skip
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride, 0, dilation=dilation, groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU6(),
    )


class _InvertedResidual(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, dilation: int, expand: int) -> None:
        super().__init__()
        hidden = c_in * expand
        self.residual = stride == 1 and c_in == c_out
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(_conv_bn_relu6(c_in, hidden, kernel=1))
        layers += [
            _conv_bn_relu6(hidden, hidden, stride=stride, dilation=dilation, groups=hidden),
            nn.Conv2d(hidden, c_out, 1, 1, 0, bias=False),
            nn.BatchNorm2d(c_out),
        ]
        self.conv = nn.Sequential(*layers)
        effective = 3 + 2 * (dilation - 1)
        begin = (effective - 1) // 2
        self.padding = (begin, effective - 1 - begin, begin, effective - 1 - begin)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.conv(F.pad(x, self.padding))
        return x + out if self.residual else out


def _mobilenet_features(output_stride: int) -> list[nn.Module]:
    features: list[nn.Module] = [_conv_bn_relu6(3, 32, stride=2)]
    current, dilation, c_in = 2, 1, 32
    for t, c, n, s in _SETTING:
        previous = dilation
        if current == output_stride:
            stride, dilation = 1, dilation * s
        else:
            stride, current = s, current * s
        for i in range(n):
            if i == 0:
                features.append(_InvertedResidual(c_in, c, stride, previous, t))
            else:
                features.append(_InvertedResidual(c_in, c, 1, dilation, t))
            c_in = c
    return features  # the final 1x1 conv to 1280 channels is not used by DeepLab


class _Backbone(nn.Module):
    def __init__(self, output_stride: int) -> None:
        super().__init__()
        features = _mobilenet_features(output_stride)
        self.low_level_features = nn.Sequential(*features[:4])  # keys 0..3
        self.high_level_features = nn.Sequential()
        for index, module in enumerate(features[4:], start=4):  # keys keep their index
            self.high_level_features.add_module(str(index), module)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        low = self.low_level_features(x)
        return low, self.high_level_features(low)


class _ASPPPooling(nn.Sequential):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out),
            nn.ReLU(),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return F.interpolate(super().forward(x), size=x.shape[-2:], mode="bilinear")


class _ASPP(nn.Module):
    def __init__(self, c_in: int, rates: tuple[int, int, int]) -> None:
        super().__init__()
        out = 256
        branches: list[nn.Module] = [
            nn.Sequential(nn.Conv2d(c_in, out, 1, bias=False), nn.BatchNorm2d(out), nn.ReLU())
        ]
        for rate in rates:
            branches.append(
                nn.Sequential(
                    nn.Conv2d(c_in, out, 3, padding=rate, dilation=rate, bias=False),
                    nn.BatchNorm2d(out),
                    nn.ReLU(),
                )
            )
        branches.append(_ASPPPooling(c_in, out))
        self.convs = nn.ModuleList(branches)
        self.project = nn.Sequential(
            nn.Conv2d(5 * out, out, 1, bias=False), nn.BatchNorm2d(out), nn.ReLU(), nn.Dropout(0.1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.project(torch.cat([conv(x) for conv in self.convs], dim=1))
        return out


class _HeadV3Plus(nn.Module):
    def __init__(self, c_high: int, c_low: int, classes: int, rates: tuple[int, int, int]) -> None:
        super().__init__()
        self.project = nn.Sequential(
            nn.Conv2d(c_low, 48, 1, bias=False), nn.BatchNorm2d(48), nn.ReLU()
        )
        self.aspp = _ASPP(c_high, rates)
        self.classifier = nn.Sequential(
            nn.Conv2d(304, 256, 3, padding=1, bias=False),
            nn.BatchNorm2d(256),
            nn.ReLU(),
            nn.Conv2d(256, classes, 1),
        )

    def forward(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        low = self.project(low)
        high = F.interpolate(self.aspp(high), size=low.shape[2:], mode="bilinear")
        out: torch.Tensor = self.classifier(torch.cat([low, high], dim=1))
        return out


class DeepLabV3PlusMobileNet(nn.Module):
    """DeepLabV3+ / MobileNetV2 (VainF layout): ``[B, 3, H, W]`` -> ``[B, classes, H, W]`` logits.

    Args:
        num_classes: 19 Cityscapes train ids.
        output_stride: 16 (the released Cityscapes model) or 8.
    """

    def __init__(self, num_classes: int = 19, output_stride: int = 16) -> None:
        super().__init__()
        rates = (12, 24, 36) if output_stride == 8 else (6, 12, 18)
        self.backbone = _Backbone(output_stride)
        self.classifier = _HeadV3Plus(320, 24, num_classes, rates)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits at the input's resolution (bilinear, ``align_corners=False``)."""
        low, high = self.backbone(images)
        logits = self.classifier(low, high)
        return F.interpolate(logits, size=images.shape[-2:], mode="bilinear")


def build_deeplabv3plus_mobilenet(num_classes: int = 19) -> DeepLabV3PlusMobileNet:
    """The Cityscapes model's architecture (output stride 16), in eval mode."""
    return DeepLabV3PlusMobileNet(num_classes, 16).eval()
