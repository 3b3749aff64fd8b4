"""The city plan: districts of street grids, facade sides, and every camera pose.

Coordinates are UTM zone 33T (WGS84). The city starts at easting 500 000 m, northing
4 500 000 m (latitude 40.65 N on zone 33's central meridian, 15 E: inland southern Italy, inside
latitude band T, which spans 40-48 N). Each split lives in its own district; districts are laid
out west to east with :data:`DISTRICT_GAP_M` of empty land between them, so no image of one
split is within 25 m (plus a wide margin) of an image of another.

A *side* is one facade row along one street segment (between two intersections). It has an
along-street coordinate ``s`` in metres, ``0 <= s <= length``, increasing to the right of a
camera that faces the facade. Cameras stand on the street and face their facade (database) or
nearly so (queries: yaw and pitch jitter, lateral offset, along-street offset).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from vpr_bench.data.synthcity.sizes import SynthCitySize

__all__ = [
    "CONDITIONS",
    "DISTRICT_GAP_M",
    "ORIGIN_EASTING",
    "ORIGIN_NORTHING",
    "PAIR_CONDITIONS",
    "Pose",
    "Side",
    "StreetPlan",
    "plan_city",
]

ORIGIN_EASTING = 500000.0
ORIGIN_NORTHING = 4500000.0
UTM_ZONE = 33
UTM_LETTER = "T"
DISTRICT_GAP_M = 150.0
STREET_HALF_WIDTH_M = 8.0
"""Distance from a street's centre line to its facades."""
CONDITIONS = ("day", "dusk", "night", "fog", "rain", "season")
"""Query conditions; database images are all ``day``."""
PAIR_CONDITIONS = ("day", "night")
"""The two conditions of the paired renders under ``images/train/pairs/``."""

# Facing direction of each side kind: heading (compass degrees) of a camera facing the facade,
# and the unit vectors (east, north) of "toward the facade" and "to the right" (increasing s).
_FACING = {
    0: ((0.0, 1.0), (1.0, 0.0)),
    180: ((0.0, -1.0), (-1.0, 0.0)),
    90: ((1.0, 0.0), (0.0, -1.0)),
    270: ((-1.0, 0.0), (0.0, 1.0)),
}


@dataclass(frozen=True)
class Side:
    """One facade row of one street segment.

    Attributes:
        key: Unique id in the city, e.g. ``"test-017n"``; seeds the facade's randomness.
        split: The split of the district the side belongs to.
        index: Position of the side in the city's side list.
        heading: Compass heading (degrees) of a camera facing this facade.
        origin: (easting, northing) of the street centre line at ``s = 0``.
        length: Facade length in metres.
    """

    key: str
    split: str
    index: int
    heading: int
    origin: tuple[float, float]
    length: float

    def position(self, s: float, distance: float) -> tuple[float, float]:
        """UTM (easting, northing) of a camera at ``s``, ``distance`` metres from the facade."""
        toward, right = _FACING[self.heading]
        back = STREET_HALF_WIDTH_M - distance  # metres from the centre line toward the facade
        return (
            self.origin[0] + s * right[0] + back * toward[0],
            self.origin[1] + s * right[1] + back * toward[1],
        )


@dataclass(frozen=True)
class Pose:
    """One image to render.

    Attributes:
        split: ``train``, ``val`` or ``test``.
        role: ``database``, ``queries`` or ``pairs``.
        place_id: The pano/place field of the file name (unique per split and role).
        side: Index of the facade side in the city's side list.
        s: Along-street position in metres.
        distance: Distance from the camera to the facade in metres.
        height: Camera height above the street in metres.
        yaw: Turn from facing the facade, degrees (positive: to the right).
        pitch: Upward tilt in degrees.
        conditions: The conditions to render the pose in (two for pairs).
        occluders: Whether cars and pedestrians may appear.
        seed: Per-image random stream (lighting, noise, occluders).
    """

    split: str
    role: str
    place_id: str
    side: int
    s: float
    distance: float
    height: float
    yaw: float
    pitch: float
    conditions: tuple[str, ...]
    occluders: bool
    seed: int


@dataclass(frozen=True)
class StreetPlan:
    """The whole city: its facade sides and every pose to render."""

    sides: tuple[Side, ...]
    poses: tuple[Pose, ...]


def _district_sides(
    split: str, nx: int, ny: int, block: float, east0: float, start: int
) -> list[Side]:
    """Two sides per segment of an ``nx`` x ``ny`` grid whose south-west corner is ``east0``."""
    gap = STREET_HALF_WIDTH_M  # facades stop this far from a crossing street's centre line
    length = block - 2.0 * gap
    sides: list[Side] = []
    segment = 0
    for j in range(ny):  # east-west streets
        for i in range(nx - 1):
            e_a, e_b = east0 + i * block + gap, east0 + (i + 1) * block - gap
            north = ORIGIN_NORTHING + j * block
            for heading, origin in ((0, (e_a, north)), (180, (e_b, north))):
                key = f"{split}-{segment:03d}{'n' if heading == 0 else 's'}"
                sides.append(Side(key, split, start + len(sides), heading, origin, length))
            segment += 1
    for i in range(nx):  # north-south streets
        for j in range(ny - 1):
            n_a, n_b = ORIGIN_NORTHING + j * block + gap, ORIGIN_NORTHING + (j + 1) * block - gap
            east = east0 + i * block
            for heading, origin in ((90, (east, n_b)), (270, (east, n_a))):
                key = f"{split}-{segment:03d}{'e' if heading == 90 else 'w'}"
                sides.append(Side(key, split, start + len(sides), heading, origin, length))
            segment += 1
    return sides


def plan_city(size: SynthCitySize, seed: int) -> StreetPlan:
    """Lay out the districts and draw every camera pose of one size and seed.

    Database images stand every ``db_spacing_m`` along every side, on the centre line, facing
    the facade, in daylight. Queries stand anywhere along a side (so up to half a spacing from
    the nearest database image on their side, and views overlap only partly with farther ones),
    1.5-4 m off the centre line either way (a scale change), with yaw +-20 degrees and pitch
    jitter; their conditions cycle through :data:`CONDITIONS` in a shuffled order. Pairs re-use
    database poses of the train split, rendered in both :data:`PAIR_CONDITIONS`.

    Args:
        size: The size to plan.
        seed: The city seed.

    Returns:
        The plan; equal arguments give equal plans.
    """
    rng = np.random.default_rng([seed, 0x5C17])
    sides: list[Side] = []
    east0 = ORIGIN_EASTING
    for district in size.districts:
        sides += _district_sides(
            district.split, district.nx, district.ny, size.block_m, east0, len(sides)
        )
        east0 += (district.nx - 1) * size.block_m + DISTRICT_GAP_M
    poses: list[Pose] = []
    stream = 0
    for district in size.districts:
        split = district.split
        own = [side for side in sides if side.split == split]
        db: list[Pose] = []
        for side in own:
            count = math.floor(side.length / size.db_spacing_m)
            offset = (side.length - (count - 1) * size.db_spacing_m) / 2.0
            for k in range(count):
                stream += 1
                db.append(
                    Pose(
                        split,
                        "database",
                        f"{side.key}{k:02d}",
                        side.index,
                        offset + k * size.db_spacing_m,
                        STREET_HALF_WIDTH_M,
                        2.2,
                        0.0,
                        12.0,
                        ("day",),
                        bool(rng.random() < 0.15),
                        stream,
                    )
                )
        poses += db
        n_q = size.queries[split]
        conditions = [CONDITIONS[i % len(CONDITIONS)] for i in range(n_q)]
        rng.shuffle(conditions)
        for q in range(n_q):
            side = own[int(rng.integers(len(own)))]
            lateral = float(rng.uniform(0.5, 2.5)) * (1.0 if rng.random() < 0.5 else -1.0)
            stream += 1
            poses.append(
                Pose(
                    split,
                    "queries",
                    f"q{q:05d}",
                    side.index,
                    float(rng.uniform(1.0, side.length - 1.0)),
                    STREET_HALF_WIDTH_M + lateral,
                    float(rng.uniform(1.6, 2.8)),
                    float(rng.uniform(-8.0, 8.0)),
                    float(rng.uniform(9.0, 15.0)),
                    (conditions[q],),
                    bool(rng.random() < 0.5),
                    stream,
                )
            )
        if split == "train" and size.pairs:
            chosen = rng.choice(len(db), size=min(size.pairs, len(db)), replace=False)
            for p, index in enumerate(sorted(int(c) for c in chosen)):
                base = db[index]
                stream += 1
                poses.append(
                    Pose(
                        split,
                        "pairs",
                        f"p{p:05d}",
                        base.side,
                        base.s,
                        base.distance,
                        base.height,
                        base.yaw,
                        base.pitch,
                        PAIR_CONDITIONS,
                        False,
                        stream,
                    )
                )
    return StreetPlan(tuple(sides), tuple(poses))
