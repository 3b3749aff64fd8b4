"""Ray-cast a pinhole camera into one side: facade plane, street-tree plane, and ground.

The camera faces its facade at distance ``d``, height ``h``, turned by ``yaw`` (right positive)
and tilted up by ``pitch``. Every pixel's ray is intersected with the facade plane (texture
look-up; roofs let the sky through), the tree plane ``TREE_SETBACK_M`` in front of it, and the
street; the nearest hit wins. Beyond the facade's ends the ray looks down the crossing street
(distant haze) or at the next block (a plain far wall). Rendering is vectorised over pixels and
super-sampled ``SUPERSAMPLE`` x ``SUPERSAMPLE`` (the conditions work on the fine grid; the writer
averages it down), which removes texture aliasing at oblique yaws.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from vpr_bench.data.synthcity.facade import (
    LABEL_FAR,
    LABEL_ROAD,
    LABEL_SIDEWALK,
    LABEL_SKY,
    LABEL_TREE,
    LABEL_TRUNK,
    PX_PER_M,
    TREE_SETBACK_M,
    Facade,
)
from vpr_bench.data.synthcity.layout import STREET_HALF_WIDTH_M, Pose

__all__ = ["HFOV_DEG", "SUPERSAMPLE", "View", "noise_table", "render_view"]

HFOV_DEG = 70.0
SUPERSAMPLE = 1
_SIDEWALK_M = 2.8
_CROSSING_M = 2.0 * STREET_HALF_WIDTH_M
_SKY_DAY = (np.array([0.50, 0.66, 0.90], np.float32), np.array([0.80, 0.86, 0.93], np.float32))


@functools.cache
def noise_table() -> np.ndarray:
    """A fixed 256x256 table of uniform noise (same in every process and run)."""
    return np.random.default_rng(20240917).random((256, 256)).astype(np.float32)


def _noise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    table = noise_table()
    out: np.ndarray = table[a.astype(np.int64) & 255, b.astype(np.int64) & 255]
    return out


@dataclass
class View:
    """A rendered view on the super-sampled grid.

    Attributes:
        rgb: ``[H, W, 3]`` float32 daylight colours.
        label: ``[H, W]`` uint8 material labels (``facade.LABEL_*``).
        depth: ``[H, W]`` float32 distance along the ray in metres (``inf`` for sky).
        glow: ``[H, W]`` float32 window glow values (1.0 where nothing can light up).
        elevation: ``[H, 1]`` float32 vertical ray direction per row (for sky gradients).
    """

    rgb: np.ndarray
    label: np.ndarray
    depth: np.ndarray
    glow: np.ndarray
    elevation: np.ndarray


def render_view(facade: Facade, pose: Pose, height: int, width: int) -> View:
    """Render the daylight view of ``pose`` onto its facade.

    Args:
        facade: The texture of the pose's side.
        pose: The camera.
        height: Output image height in pixels (the grid is ``SUPERSAMPLE`` times finer).
        width: Output image width in pixels.

    Returns:
        The :class:`View` on the fine grid.
    """
    hh, ww = height * SUPERSAMPLE, width * SUPERSAMPLE
    focal = (ww / 2.0) / math.tan(math.radians(HFOV_DEG) / 2.0)
    x = ((np.arange(ww, dtype=np.float32) + 0.5 - ww / 2.0) / focal)[None, :]
    y = ((hh / 2.0 - np.arange(hh, dtype=np.float32) - 0.5) / focal)[:, None]
    phi, psi = math.radians(pose.pitch), math.radians(pose.yaw)
    fwd = math.cos(phi) - y * math.sin(phi)
    up = math.sin(phi) + y * math.cos(phi)  # [hh, 1]
    toward = fwd * math.cos(psi) - x * math.sin(psi)  # [hh, ww], > 0 within the field of view
    along = fwd * math.sin(psi) + x * math.cos(psi)
    ray_norm = np.sqrt(1.0 + x * x + y * y)
    d, h = pose.distance, pose.height

    lam_f = d / toward
    s_f = pose.s + lam_f * along
    z_f = h + lam_f * up
    rgb = np.empty((hh, ww, 3), np.float32)
    sky_mix = np.clip(up * 2.0, 0.0, 1.0)[..., None]
    rgb[:] = _SKY_DAY[1] * (1.0 - sky_mix) + _SKY_DAY[0] * sky_mix
    label = np.full((hh, ww), LABEL_SKY, np.uint8)
    depth = np.full((hh, ww), np.inf, np.float32)
    glow = np.ones((hh, ww), np.float32)

    # Facade plane: texture look-up where the ray lands on a building (one flat gather).
    t_rows, t_cols = facade.label.shape
    col = np.clip((s_f * PX_PER_M).astype(np.int64), 0, t_cols - 1)
    row = np.clip((z_f * PX_PER_M).astype(np.int64), 0, t_rows - 1)
    flat = row * t_cols + col
    tex_label = facade.label.ravel()[flat]
    inside = (s_f >= 0.0) & (s_f <= facade.length) & (z_f >= 0.0) & (z_f < t_rows / PX_PER_M)
    on_wall = inside & (tex_label != LABEL_SKY)
    rgb = np.where(on_wall[..., None], facade.rgb.reshape(-1, 3)[flat], rgb)
    label = np.where(on_wall, tex_label, label)
    glow = np.where(on_wall, facade.glow.ravel()[flat], glow)
    depth = np.where(on_wall, lam_f * ray_norm, depth)
    # Beyond the ends: down the crossing street (haze) or the next block (a plain far wall).
    outside = (s_f < 0.0) | (s_f > facade.length)
    overshoot = np.where(s_f < 0.0, -s_f, s_f - facade.length)
    crossing = outside & (overshoot <= _CROSSING_M) & (z_f >= 0.0)
    haze = crossing & (up < 0.08 * toward)
    rgb[haze] = np.array([0.62, 0.64, 0.68], np.float32)
    next_block = outside & (overshoot > _CROSSING_M) & (z_f >= 0.0) & (z_f < 13.0)
    shade = 0.5 + 0.15 * _noise(overshoot * 0.5, np.zeros_like(overshoot))
    rgb[next_block] = (np.array([0.95, 0.9, 0.82], np.float32) * shade[..., None])[next_block]
    far = haze | next_block
    label[far] = LABEL_FAR
    depth[haze] = 60.0
    depth[next_block] = (lam_f * ray_norm)[next_block]

    # Street: road, sidewalk along the facade, a dashed centre line.
    ground = z_f < 0.0
    lam_g = np.where(ground, h / np.maximum(-up, 1e-6), 0.0)
    s_g = pose.s + lam_g * along
    from_facade = d - lam_g * toward
    on_sidewalk = ground & (from_facade < _SIDEWALK_M) & (s_g >= 0.0) & (s_g <= facade.length)
    grit = _noise(s_g * 12.0, from_facade * 12.0)
    road = np.array([0.36, 0.36, 0.38], np.float32)[None, None, :] * (0.85 + 0.3 * grit[..., None])
    centre = np.abs(from_facade - STREET_HALF_WIDTH_M) < 0.12
    dash = centre & ((s_g % 6.0) < 3.0)
    tiles = (np.abs(s_g - np.round(s_g)) < 0.04) | (
        np.abs(from_facade - np.round(from_facade)) < 0.04
    )
    walk = np.where(tiles[..., None], 0.55, 0.72) * np.array([1.0, 0.97, 0.92], np.float32)
    street = np.where(on_sidewalk[..., None], walk, road)
    street = np.where(dash[..., None], np.float32(0.9), street)
    rgb[ground] = street[ground]
    label[ground] = np.where(on_sidewalk, LABEL_SIDEWALK, LABEL_ROAD)[ground]
    depth[ground] = (lam_g * ray_norm)[ground]

    # Street trees on their own plane in front of the facade.
    if len(facade.trees):
        lam_t = (d - TREE_SETBACK_M) / toward
        s_t = pose.s + lam_t * along
        z_t = h + lam_t * up
        lo, hi = float(s_t.min()), float(s_t.max())
        visible = facade.trees[(facade.trees[:, 0] > lo - 3.0) & (facade.trees[:, 0] < hi + 3.0)]
        leaves = _noise(s_t * 7.0, z_t * 7.0) if len(visible) else s_t
        for s_k, trunk_top, radius, tone, kind in visible:
            dx = s_t - s_k
            trunk = (np.abs(dx) < 0.16) & (z_t >= 0.0) & (z_t < trunk_top + radius * 0.5)
            cz = trunk_top + radius * (0.8 if kind < 0.5 else 1.2)
            ry = radius * (1.05 if kind < 0.5 else 1.5)
            crown = ((dx / radius) ** 2 + ((z_t - cz) / ry) ** 2 < 1.0) & (leaves > 0.18)
            colour = np.array([0.16 + 0.1 * tone, 0.38 + 0.12 * tone, 0.12], np.float32)
            rgb[trunk] = np.array([0.30, 0.22, 0.15], np.float32)
            label[trunk] = LABEL_TRUNK
            rgb[crown] = colour * (0.6 + 0.6 * leaves[crown])[:, None]
            label[crown] = LABEL_TREE
            hit = trunk | crown
            depth[hit] = (lam_t * ray_norm)[hit]
            glow[hit] = 1.0
    return View(rgb, label, depth, glow, up.astype(np.float32))
