"""The sizes of the synthetic city (no numpy: importable by the dataset spec instantly)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SIZES", "SynthCitySize", "District"]


@dataclass(frozen=True)
class District:
    """One rectangular street grid; each split lives in its own district.

    Attributes:
        split: The split whose images are taken in this district.
        nx: Intersections along easting.
        ny: Intersections along northing.
    """

    split: str
    nx: int
    ny: int


@dataclass(frozen=True)
class SynthCitySize:
    """Everything that makes one size of the city.

    Attributes:
        name: The size name, part of the folder name ``synthcity-<name>``.
        height: Image height in pixels.
        width: Image width in pixels.
        districts: The street grid of each split (train, val, test).
        block_m: Distance between neighbouring intersections in metres.
        db_spacing_m: Distance between consecutive database images along a facade.
        queries: Number of queries per split, as ``{split: count}``.
        pairs: Number of paired (day, night) renders of train places.
        workers: Processes used to render (1 = no multiprocessing).
    """

    name: str
    height: int
    width: int
    districts: tuple[District, ...]
    block_m: float
    db_spacing_m: float
    queries: dict[str, int]
    pairs: int
    workers: int = 2


SIZES: dict[str, SynthCitySize] = {
    "tiny": SynthCitySize(
        name="tiny",
        height=64,
        width=85,
        districts=(District("train", 3, 3), District("val", 3, 3), District("test", 3, 3)),
        block_m=50.0,
        db_spacing_m=5.0,
        # 300 training and 150 validation queries: enough that a short training run's gain on
        # val is measured, not noise (tiny-triplet quick, seeds 0/1: val R@1 19.3 untrained ->
        # 32.7/35.3; with 60/60 it was 23.3 -> 28.3/30.0, within one query's 1.7 points).
        queries={"train": 300, "val": 150, "test": 60},
        pairs=24,
        workers=1,
    ),
    "small": SynthCitySize(
        name="small",
        height=120,
        width=160,
        districts=(District("train", 6, 6), District("val", 3, 4), District("test", 4, 4)),
        block_m=60.0,
        db_spacing_m=4.0,
        queries={"train": 1200, "val": 300, "test": 600},
        pairs=300,
        workers=2,
    ),
}
"""The sizes :func:`vpr_bench.data.synthcity.prepare` knows, by name."""
