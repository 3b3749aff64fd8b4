"""SFRS's nine region descriptors of a NetVLAD model (methods.md Part A, 4.1).

SFRS (OpenIBL ``EmbedRegionNet``, ``ibl/models/netvlad.py:112-207``) compares images region by
region: the local feature map is cut into a 2x2 grid of quarters, each quarter is aggregated by
the NetVLAD layer into an unnormalised ``[K, D]`` VLAD (``netvlad.py:139-149``), the halves are
sums of two quarters (``netvlad.py:152-157``) and the whole image is the sum of all four
(``netvlad.py:160-164``). Because a VLAD is a sum over locations, a sum of quarter VLADs is the
VLAD of their union. The nine regions, in OpenIBL's order (``netvlad.py:173-174``):

====  ============  ==========
 r    region        VLAD
====  ============  ==========
 0    global        Q0+Q1+Q2+Q3
 1    top           Q0+Q1
 2    bottom        Q2+Q3
 3    left          Q0+Q2
 4    right         Q1+Q3
 5    top-left      Q0
 6    top-right     Q1
 7    bottom-left   Q2
 8    bottom-right  Q3
====  ============  ==========

Each region is then normalised like the eval descriptor (``netvlad.py:166-171``): intra-normalised,
flattened k-major, L2-normalised. Region 0 therefore equals the eval descriptor up to rounding.

Quarters, and uneven maps: OpenIBL reshapes the map into ``2 x int(H/2)`` rows and
``2 x int(W/2)`` columns (``netvlad.py:127-133``), which only works for even H and W; for an odd
size its ``view`` raises. Here the top/left quarters get ``H // 2`` rows / ``W // 2`` columns and
the bottom/right ones the remaining ``H - H // 2`` / ``W - W // 2``, so for even maps the split is
OpenIBL's and for odd maps (the tiny trunk's 15x20 at 120x160) it is rows 0-6 / 7-14: the quarters
still tile the whole map and region 0 stays the whole-image descriptor.

The quarter VLADs are not computed by running the layer on four crops: input normalisation and
soft-assignment are per location, so one assignment of the whole map followed by per-quarter sums
gives the same numbers (checked against OpenIBL's outputs in the tests) for less work.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from vpr_bench.errors import ConfigError
from vpr_bench_netvlad.layer import NetVLAD

__all__ = ["REGION_COUNT", "REGION_NAMES", "region_descriptors", "region_vlads"]

REGION_NAMES = (
    "global",
    "top",
    "bottom",
    "left",
    "right",
    "top-left",
    "top-right",
    "bottom-left",
    "bottom-right",
)
"""The regions in OpenIBL's order (``ibl/models/netvlad.py:173``): index r of the region axis."""

REGION_COUNT = len(REGION_NAMES)
"""Nine: the whole image, four halves, four quarters."""


def _min_size(image: int, feature: int, other_image: int, other_feature: int) -> int:
    """An image size giving at least two feature cells along a dimension.

    The trunk's stride is estimated as pixels per feature cell along whichever dimension has
    more cells (where the ratio is closest to the stride); twice that gives two cells for
    trunks that round down (VGG16: 16 px -> 1 row, 32 px -> 2) or up (the tiny trunk). With
    no cell at all there is nothing to estimate from, and twice the size is suggested.
    """
    cells = [(f, i) for i, f in ((image, feature), (other_image, other_feature)) if f > 0]
    if not cells:
        return 2 * image
    count, pixels = max(cells)
    return max(2, math.ceil(2 * pixels / count))


def _check_splittable(height: int, width: int, image_size: tuple[int, int] | None) -> None:
    """Refuse (one-line ConfigError) a map with fewer than 2 rows or 2 columns."""
    if height >= 2 and width >= 2:
        return
    if image_size is None:
        raise ConfigError(
            f"feature map {height}x{width} cannot be split into 2x2 regions; use larger images "
            "(trainer.height, trainer.width)."
        )
    img_h, img_w = image_size
    sizes, keys = [], []
    if height < 2:
        sizes.append(f"at least {_min_size(img_h, height, img_w, width)} pixels high")
        keys.append("trainer.height")
    if width < 2:
        sizes.append(f"at least {_min_size(img_w, width, img_h, height)} pixels wide")
        keys.append("trainer.width")
    raise ConfigError(
        f"feature map {height}x{width} from {img_h}x{img_w} images cannot be split into 2x2 "
        f"regions; use images {' and '.join(sizes)} ({', '.join(keys)})."
    )


def region_vlads(
    features: torch.Tensor, layer: NetVLAD, *, image_size: tuple[int, int] | None = None
) -> torch.Tensor:
    """Unnormalised VLADs of the nine SFRS regions of a local feature map.

    Args:
        features: ``[B, D, H, W]`` local features (the trunk's output), H and W at least 2.
        layer: The NetVLAD layer (its normalisation, soft-assignment and centroids are used).
        image_size: ``(height, width)`` of the images the features come from; only used to
            suggest a fitting image size when the map is too small.

    Returns:
        ``[B, 9, K, D]``: per image the VLADs of the regions in :data:`REGION_NAMES` order
        (global, top, bottom, left, right, top-left, top-right, bottom-left, bottom-right).
        Quarters are split at ``H // 2`` and ``W // 2`` (see the module docstring).

    Raises:
        ValueError: ``features`` is not ``[B, layer.dim, H, W]``.
        ConfigError: The map is smaller than 2x2, so it has no quarters.
    """
    if features.ndim != 4 or features.shape[1] != layer.dim:
        raise ValueError(
            f"region_vlads expects local features [B, {layer.dim}, H, W], "
            f"got {tuple(features.shape)}."
        )
    height, width = int(features.shape[2]), int(features.shape[3])
    _check_splittable(height, width, image_size)
    x = F.normalize(features, p=2, dim=1) if layer.normalize_input else features
    assign = layer.soft_assign(x).unflatten(2, (height, width))  # [B, K, H, W]
    mid_h, mid_w = height // 2, width // 2
    quarters = []
    for rows in (slice(0, mid_h), slice(mid_h, height)):
        for cols in (slice(0, mid_w), slice(mid_w, width)):
            a = assign[:, :, rows, cols].flatten(2)  # [B, K, n]
            f = x[:, :, rows, cols].flatten(2)  # [B, D, n]
            weighted = torch.bmm(a, f.transpose(1, 2))  # [B, K, D]
            quarters.append(weighted - a.sum(dim=2, keepdim=True) * layer.centroids.unsqueeze(0))
    q0, q1, q2, q3 = quarters
    regions = [q0 + q1 + q2 + q3, q0 + q1, q2 + q3, q0 + q2, q1 + q3, q0, q1, q2, q3]
    return torch.stack(regions, dim=1)


def region_descriptors(
    features: torch.Tensor, layer: NetVLAD, *, image_size: tuple[int, int] | None = None
) -> torch.Tensor:
    """L2-normalised descriptors of the nine SFRS regions of a local feature map.

    Each region's VLAD from :func:`region_vlads` is normalised as the eval descriptor is
    (:func:`vpr_bench_netvlad.layer.vlad_to_descriptor`): intra-normalised per cluster,
    flattened k-major (``index = k * D + d``) and L2-normalised.

    Args:
        features: ``[B, D, H, W]`` local features, H and W at least 2.
        layer: The NetVLAD layer.
        image_size: ``(height, width)`` of the source images, for the too-small error message.

    Returns:
        ``[B, 9, K * D]``; region 0 equals ``vlad_to_descriptor(layer(features))`` up to
        rounding.

    Raises:
        ValueError: ``features`` is not ``[B, layer.dim, H, W]``.
        ConfigError: The map is smaller than 2x2.
    """
    vlads = region_vlads(features, layer, image_size=image_size)
    vlads = F.normalize(vlads, p=2, dim=3)
    return F.normalize(vlads.flatten(2), p=2, dim=2)
