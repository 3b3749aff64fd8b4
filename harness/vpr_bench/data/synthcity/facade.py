"""Procedural facade textures: buildings with windows, doors, signboards, and street trees.

A facade is drawn once per side into a texture in metric coordinates (``PX_PER_M`` texels per
metre; row 0 is street level, rows grow upward; column 0 is ``s = 0``). Everything a renderer or
a condition needs is kept per texel: colour, a material label, and for windows a "glow" value in
[0, 1) that decides which windows are lit at dusk and at night (the same windows every night).
Every random choice comes from a generator seeded by (city seed, side index), so a side looks the
same in every image and every run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "LABEL_DOOR",
    "LABEL_FAR",
    "LABEL_OCCLUDER",
    "LABEL_ROAD",
    "LABEL_SIDEWALK",
    "LABEL_SIGN",
    "LABEL_SKY",
    "LABEL_TREE",
    "LABEL_TRUNK",
    "LABEL_WALL",
    "LABEL_WINDOW",
    "PX_PER_M",
    "TREE_SETBACK_M",
    "Facade",
    "build_facade",
]

PX_PER_M = 8
MAX_HEIGHT_M = 30.0
TREE_SETBACK_M = 2.6
"""Distance of the street-tree plane in front of the facade."""

LABEL_SKY, LABEL_WALL, LABEL_WINDOW, LABEL_DOOR, LABEL_SIGN = 0, 1, 2, 3, 4
LABEL_ROAD, LABEL_SIDEWALK, LABEL_TRUNK, LABEL_TREE, LABEL_FAR, LABEL_OCCLUDER = 5, 6, 7, 8, 9, 10

# A limited palette so that colour alone does not identify a place (perceptual aliasing).
_WALLS = np.array(
    [
        [0.80, 0.72, 0.58],
        [0.70, 0.45, 0.35],
        [0.85, 0.82, 0.75],
        [0.55, 0.55, 0.58],
        [0.78, 0.62, 0.40],
        [0.62, 0.66, 0.55],
        [0.90, 0.86, 0.70],
        [0.60, 0.40, 0.30],
        [0.72, 0.74, 0.80],
        [0.82, 0.70, 0.66],
    ],
    dtype=np.float32,
)
_SIGNS = np.array(
    [
        [0.80, 0.10, 0.10],
        [0.10, 0.30, 0.70],
        [0.95, 0.80, 0.10],
        [0.10, 0.50, 0.25],
        [0.15, 0.15, 0.15],
        [0.95, 0.95, 0.95],
    ],
    dtype=np.float32,
)


@dataclass(frozen=True)
class Facade:
    """The texture of one side.

    Attributes:
        rgb: ``[H, W, 3]`` float32 colours in [0, 1].
        label: ``[H, W]`` uint8 material labels (``LABEL_*``); ``LABEL_SKY`` above roofs.
        glow: ``[H, W]`` float32; a window texel is lit at night when its value is below the
            night's threshold; 1.0 elsewhere.
        trees: ``[T, 5]`` float32 rows ``(s, trunk_top_m, crown_radius_m, leaf_tone, kind)``.
        length: Facade length in metres.
    """

    rgb: np.ndarray
    label: np.ndarray
    glow: np.ndarray
    trees: np.ndarray
    length: float


def _glyphs(rng: np.random.Generator, count: int, rows: int = 5, cols: int = 3) -> np.ndarray:
    """``count`` random glyph bitmaps ``[count, rows, cols]`` with at least a few set bits."""
    bits = rng.random((count, rows, cols)) < 0.5
    bits[:, rng.integers(rows), :] |= True  # a bar in every glyph keeps it letter-like
    return bits


def _draw_building(
    rng: np.random.Generator,
    rgb: np.ndarray,
    label: np.ndarray,
    glow: np.ndarray,
    c0: int,
    c1: int,
) -> None:
    """Draw one building into texture columns ``c0:c1`` in place."""
    ppm = PX_PER_M
    height_m = float(rng.uniform(7.0, 26.0))
    top = min(int(height_m * ppm), rgb.shape[0])
    width = c1 - c0
    z = np.arange(top, dtype=np.float32)[:, None] / ppm  # metres above street
    x = np.arange(width, dtype=np.float32)[None, :] / ppm  # metres from the building's left
    base = _WALLS[rng.integers(len(_WALLS))]
    wall = 0.4 * base + 0.6 * rng.uniform(0.15, 0.95, 3).astype(np.float32)
    block = np.empty((top, width, 3), np.float32)
    block[:] = np.clip(wall, 0.0, 1.0)
    lab = np.full((top, width), LABEL_WALL, np.uint8)
    glo = np.ones((top, width), np.float32)
    # Brick/course lines and a darker cornice under the roof.
    course = rng.uniform(0.25, 0.5)
    block[(z[:, 0] % course) < 0.05] *= 0.9
    block[max(top - int(0.6 * ppm), 0) :] *= 0.7
    ground = float(rng.uniform(3.6, 4.6))
    floor_h = float(rng.uniform(2.9, 3.6))
    pitch = float(rng.uniform(1.7, 3.2))
    win_w = pitch * float(rng.uniform(0.4, 0.7))
    win_h = floor_h * float(rng.uniform(0.45, 0.65))
    x_pad = (x[0, -1] - np.floor(x[0, -1] / pitch) * pitch) / 2.0 if width > 1 else 0.0
    xl = (x - x_pad) % pitch
    zl = (z - ground) % floor_h
    in_col = (
        (xl > (pitch - win_w) / 2) & (xl < (pitch + win_w) / 2) & (x > 0.4) & (x < x[0, -1] - 0.4)
    )
    in_row = (zl > 0.8) & (zl < 0.8 + win_h) & (z > ground) & (z < height_m - 0.9)
    windows = in_col & in_row
    glass = np.array([0.18, 0.22, 0.30], np.float32) * float(rng.uniform(0.7, 1.6))
    frame = wall * 0.55 if rng.random() < 0.5 else np.array([0.92, 0.92, 0.9], np.float32)
    frame_mask = (
        in_col & (zl > 0.65) & (zl < 0.95 + win_h) & (z > ground) & (z < height_m - 0.75) & ~windows
    )
    block[frame_mask] = frame
    block[windows] = glass
    lab[windows] = LABEL_WINDOW
    # One glow value per window: lit windows are chosen per window, not per texel.
    win_index = np.floor((x - x_pad) / pitch) * 97 + np.floor((z - ground) / floor_h)
    table = rng.random(4096).astype(np.float32)
    glo[windows] = table[(win_index.astype(np.int64) % 4096)][windows]
    if rng.random() < 0.35:  # shutters beside windows
        shutter = _SIGNS[rng.integers(len(_SIGNS) - 2)] * 0.8
        beside = (
            in_row
            & ~in_col
            & (xl > (pitch - win_w) / 2 - 0.35)
            & (xl < (pitch + win_w) / 2 + 0.35)
            & (x > 0.1)
            & (x < x[0, -1] - 0.1)
        )
        block[beside] = shutter
    # Ground floor: a door and shop windows.
    gz = z[:, 0] < ground
    block[gz] *= 0.85
    door_x = float(rng.uniform(0.5, max(0.6, x[0, -1] - 1.8)))
    door = (x > door_x) & (x < door_x + 1.2) & (z < 2.4)
    shop = (z > 0.7) & (z < ground - 1.2) & ~door & (x > 0.6) & (x < x[0, -1] - 0.6)
    shop &= ((x + door_x) % 4.0) < 3.0
    block[shop] = glass * 1.3
    lab[shop] = LABEL_WINDOW
    glo[shop] = float(rng.uniform(0.0, 0.6))  # shops are lit more often
    block[door] = np.array([0.35, 0.22, 0.12], np.float32) * float(rng.uniform(0.6, 1.4))
    lab[door] = LABEL_DOOR
    # A signboard with glyph-like patterns above the shop.
    if rng.random() < 0.7 and width > 3 * ppm:
        s_lo = int(rng.uniform(0.3, 1.5) * ppm)
        s_hi = width - int(rng.uniform(0.3, 1.5) * ppm)
        z_lo, z_hi = int((ground - 1.0) * ppm), int((ground - 0.2) * ppm)
        colours = rng.choice(len(_SIGNS), size=2, replace=False)
        block[z_lo:z_hi, s_lo:s_hi] = _SIGNS[colours[0]]
        lab[z_lo:z_hi, s_lo:s_hi] = LABEL_SIGN
        glo[z_lo:z_hi, s_lo:s_hi] = 0.0
        glyph_h = z_hi - z_lo - 2
        glyph_w = max(glyph_h * 3 // 5, 2)
        n = max((s_hi - s_lo - 2) // (glyph_w + 2), 0)
        if n and glyph_h >= 5:
            bits = _glyphs(rng, n)
            yi = (np.arange(glyph_h) * 5 // glyph_h)[:, None]
            xi = (np.arange(glyph_w) * 3 // glyph_w)[None, :]
            for g in range(n):
                g0 = s_lo + 2 + g * (glyph_w + 2)
                mask = bits[g][yi, xi][::-1]  # texture rows grow upward
                region = block[z_lo + 1 : z_lo + 1 + glyph_h, g0 : g0 + glyph_w]
                region[mask] = _SIGNS[colours[1]]
    rgb[:top, c0:c1] = block
    label[:top, c0:c1] = lab
    glow[:top, c0:c1] = glo


def build_facade(seed: int, side_index: int, length: float) -> Facade:
    """Draw the facade texture and the street trees of one side.

    Args:
        seed: The city seed.
        side_index: The side's index in the plan (its random stream).
        length: Facade length in metres.

    Returns:
        The side's :class:`Facade`.
    """
    rng = np.random.default_rng([seed, side_index, 0xFACADE])
    height = int(MAX_HEIGHT_M * PX_PER_M)
    width = int(np.ceil(length * PX_PER_M)) + 1
    rgb = np.zeros((height, width, 3), np.float32)
    label = np.full((height, width), LABEL_SKY, np.uint8)
    glow = np.ones((height, width), np.float32)
    c0 = 0
    while c0 < width:
        c1 = min(width, c0 + int(rng.uniform(6.0, 16.0) * PX_PER_M))
        if width - c1 < 4 * PX_PER_M:  # no sliver buildings at the end
            c1 = width
        _draw_building(rng, rgb, label, glow, c0, c1)
        c0 = c1
    trees: list[tuple[float, float, float, float, float]] = []
    s = float(rng.uniform(1.0, 8.0))
    while s < length - 1.0:
        if rng.random() < 0.6:
            trees.append(
                (
                    s,
                    float(rng.uniform(2.2, 3.5)),
                    float(rng.uniform(1.2, 2.4)),
                    float(rng.uniform(0.0, 1.0)),
                    float(rng.integers(2)),
                )
            )
        s += float(rng.uniform(6.0, 14.0))
    tree_array = np.array(trees, np.float32).reshape(-1, 5)
    return Facade(rgb, label, glow, tree_array, length)
