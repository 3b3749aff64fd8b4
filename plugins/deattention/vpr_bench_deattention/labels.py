"""Class label -> keep mask tables (methods.md Methods B, C.1; the "label -> mask table").

A teacher's per-pixel class becomes 0 (de-attended) when the class's category is in
``model.deatt_categories`` and 1 otherwise (DEATT networks/Segmentation.py:50-62,
MobileNet/cityscapes.py:340-357: every category starts as keep, the listed ones are set to 0).
"""

from __future__ import annotations

import numpy as np

from vpr_bench_deattention.config import check_categories

__all__ = [
    "CITYSCAPES_CATEGORY",
    "CITYSCAPES_TRAIN_IDS",
    "SYNTHCITY_CATEGORIES",
    "keep_table",
]

CITYSCAPES_TRAIN_IDS = (
    "road",
    "sidewalk",
    "building",
    "wall",
    "fence",
    "pole",
    "traffic light",
    "traffic sign",
    "vegetation",
    "terrain",
    "sky",
    "person",
    "rider",
    "car",
    "truck",
    "bus",
    "train",
    "motorcycle",
    "bicycle",
)
"""The 19 Cityscapes train ids in order (0 = road ... 18 = bicycle)."""

CITYSCAPES_CATEGORY: dict[str, str] = {
    "road": "flat",
    "sidewalk": "flat",
    "building": "construction",
    "wall": "construction",
    "fence": "construction",
    "pole": "object",
    "traffic light": "object",
    "traffic sign": "object",
    "vegetation": "nature",
    "terrain": "nature",
    "sky": "sky",
    "person": "human",
    "rider": "human",
    "car": "vehicle",
    "truck": "vehicle",
    "bus": "vehicle",
    "train": "vehicle",
    "motorcycle": "vehicle",
    "bicycle": "vehicle",
}
"""The Cityscapes category of each train class."""

SYNTHCITY_CATEGORIES: dict[int, tuple[str, ...]] = {
    0: ("sky",),
    1: ("construction",),  # wall
    2: ("construction",),  # window
    3: ("construction",),  # door
    4: ("object",),  # sign board
    5: ("flat",),  # road
    6: ("flat",),  # sidewalk
    7: ("nature",),  # tree trunk
    8: ("nature",),  # tree crown
    9: ("construction",),  # far wall / crossing street
    10: ("human", "vehicle"),  # occluders: cars and pedestrians in one class
}
"""The categories of each synthcity renderer class (``vpr_bench.data.SYNTHCITY_CLASS_NAMES``);
an occluder is de-attended when human or vehicle is listed."""


def keep_table(kind: str, categories: tuple[str, ...] | list[str]) -> np.ndarray:
    """The 0/1 keep value of every class id of a label set.

    Args:
        kind: ``cityscapes`` (19 train ids; 255 and other ids keep) or ``synthcity``.
        categories: The de-attended categories (``model.deatt_categories``).

    Returns:
        ``[256]`` float32 lookup table: ``table[label_map]`` is the keep mask.

    Raises:
        ConfigError: An unknown category (the message lists the known ones).
        ValueError: An unknown label set.
    """
    chosen = set(check_categories(list(categories), "model.deatt_categories"))
    table = np.ones(256, np.float32)
    if kind == "cityscapes":
        for train_id, name in enumerate(CITYSCAPES_TRAIN_IDS):
            if CITYSCAPES_CATEGORY[name] in chosen:
                table[train_id] = 0.0
    elif kind == "synthcity":
        for class_id, cats in SYNTHCITY_CATEGORIES.items():
            if chosen.intersection(cats):
                table[class_id] = 0.0
    else:
        raise ValueError(f"Unknown label set {kind!r}; known: cityscapes, synthcity.")
    return table
