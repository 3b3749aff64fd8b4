"""DaCo's view augmentation for a whole batch at once, on the training device.

The same choices as :class:`~vpr_bench_daco.augment.ViewAugment` (its ``draw`` and the colour
jitter's draw for each key, so the distributions are identical), applied to a ``[B, 3, H, W]``
batch in a handful of tensor operations instead of per image: the crops and their resize by
``torchvision.ops.roi_align`` (each output pixel the mean of an adaptive grid of bilinear
samples of its bin, close to an antialiased resize), then brightness, contrast, saturation and
hue in each image's own order (masked per position), grey and flip by masks. Hue follows
torchvision's tensor ``adjust_hue`` (RGB -> HSV, shift, back).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from vpr_bench.train import ColorJitter
from vpr_bench_daco.augment import ViewAugment

__all__ = ["augment_batch"]


def _gray(x: torch.Tensor) -> torch.Tensor:
    """ITU-R 601 luma ``[B, 1, H, W]`` (torchvision's rgb_to_grayscale)."""
    r, g, b = x.unbind(dim=1)
    return (0.2989 * r + 0.587 * g + 0.114 * b).unsqueeze(1)


def _blend(x: torch.Tensor, other: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return (factor * x + (1.0 - factor) * other).clamp(0.0, 1.0)


def _rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    r, g, b = x.unbind(dim=1)
    maxc, _ = x.max(dim=1)
    minc, _ = x.min(dim=1)
    eqc = maxc == minc
    cr = maxc - minc
    ones = torch.ones_like(maxc)
    s = cr / torch.where(eqc, ones, maxc)
    cr_divisor = torch.where(eqc, ones, cr)
    rc, gc, bc = (maxc - r) / cr_divisor, (maxc - g) / cr_divisor, (maxc - b) / cr_divisor
    hr = (maxc == r) * (bc - gc)
    hg = ((maxc == g) & (maxc != r)) * (2.0 + rc - bc)
    hb = ((maxc != g) & (maxc != r)) * (4.0 + gc - rc)
    h = torch.fmod((hr + hg + hb) / 6.0 + 1.0, 1.0)
    return torch.stack((h, s, maxc), dim=1)


def _hsv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """HSV -> RGB as ``v - v s clamp(min(k, 4 - k), 0, 1)``, ``k = (n + 6 h) mod 6`` for
    n = 5, 3, 1 (R, G, B): torchvision's sector table in closed form, one pass per channel."""
    h, s, v = x.unbind(dim=1)
    channels = []
    for n in (5.0, 3.0, 1.0):
        k = torch.remainder(n + 6.0 * h, 6.0)
        channels.append(v - v * s * torch.clamp(torch.minimum(k, 4.0 - k), 0.0, 1.0))
    return torch.stack(channels, dim=1).clamp(0.0, 1.0)


def _hue(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    hsv = _rgb_to_hsv(x)
    h = torch.remainder(hsv[:, 0] + shift.view(-1, 1, 1), 1.0)
    return _hsv_to_rgb(torch.stack((h, hsv[:, 1], hsv[:, 2]), dim=1))


def augment_batch(
    augment: ViewAugment,
    images: torch.Tensor,
    keys: Sequence[Sequence[int]],
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Views of a ``[B, 3, H, W]`` uint8 batch (one key per image): ``[B, 3, size, width]``.

    Args:
        augment: The augmentation (its options and its per-key draws).
        images: Same-size source images.
        keys: Each image's key, as :meth:`ViewAugment.apply` takes it.
        device: Where the work runs.
    """
    from torchvision.ops import roi_align

    _, _, height, width = images.shape
    draws = [augment.draw(height, width, key) for key in keys]
    jitter = ColorJitter.from_config(augment.jitter)
    colour = [jitter.draw((*key, 1)) for key in keys]
    x = images.to(device, non_blocking=True).float() / 255.0
    boxes = torch.tensor(
        [
            [i, d.box[1], d.box[0], d.box[1] + d.box[3], d.box[0] + d.box[2]]
            for i, d in enumerate(draws)
        ],
        dtype=torch.float32,
        device=x.device,
    )
    out_size = (augment.size, augment.width or augment.size)
    x = roi_align(x, boxes, out_size, spatial_scale=1.0, sampling_ratio=-1, aligned=True)
    x = x.clamp(0.0, 1.0)
    on = torch.tensor([d.jitter for d in draws], device=x.device)

    def factors(values: list[float]) -> torch.Tensor:
        return torch.tensor(values, device=x.device, dtype=x.dtype).view(-1, 1, 1, 1)

    brightness = factors([c.brightness for c in colour])
    contrast = factors([c.contrast for c in colour])
    saturation = factors([c.saturation for c in colour])
    shift = torch.tensor([c.hue for c in colour], device=x.device, dtype=x.dtype)
    order = torch.tensor([c.order for c in colour], device=x.device)  # [B, 4]
    strengths = (jitter.brightness, jitter.contrast, jitter.saturation, jitter.hue)
    for position in range(4):
        for op in range(4):
            if not strengths[op]:
                continue
            rows = torch.nonzero(on & (order[:, position] == op)).flatten()
            if rows.numel() == 0:
                continue
            part = x.index_select(0, rows)
            if op == 0:
                part = (part * brightness[rows]).clamp(0.0, 1.0)
            elif op == 1:
                mean = _gray(part).mean(dim=(1, 2, 3), keepdim=True)
                part = _blend(part, mean, contrast[rows])
            elif op == 2:
                part = _blend(part, _gray(part), saturation[rows])
            else:
                part = _hue(part, shift[rows])
            x = x.index_copy(0, rows, part)
    gray = torch.tensor([d.gray for d in draws], device=x.device).view(-1, 1, 1, 1)
    x = torch.where(gray, _gray(x).expand_as(x), x)
    flip = torch.tensor([d.flip for d in draws], device=x.device).view(-1, 1, 1, 1)
    x = torch.where(flip, x.flip(-1), x)
    return x.contiguous()
