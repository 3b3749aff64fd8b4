"""Per-image class maps of the synthetic city (``data prepare synthcity --labels``).

Each image's class map is the renderer's material label of every pixel (the same render the
image comes from, occluders included), written as an 8-bit grey PNG in a ``labels/`` tree that
mirrors ``images/``: ``<city>/labels/<split>/<role>/[<cond>/]<name>.png`` for
``<city>/images/<split>/<role>/[<cond>/]<name>.jpg``. They sit beside the images in a sibling
tree, not in the image folders, because the datasets_vg reader lists every ``.png`` of an image
folder as an image. ``labels/labels.json`` records the generator version, size, seed, file
count and a sha256 over the maps; the images, ``manifest.json`` and the dataset version are the
same with and without labels.
"""

from __future__ import annotations

import io
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any

from vpr_bench.errors import DataError

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "CLASS_NAMES",
    "LABELS_DIR",
    "LABELS_MANIFEST",
    "class_map_path",
    "encode_class_map",
    "read_class_map",
]

LABELS_DIR = "labels"
LABELS_MANIFEST = "labels.json"

CLASS_NAMES: dict[int, str] = {
    0: "sky",
    1: "wall",
    2: "window",
    3: "door",
    4: "sign",
    5: "road",
    6: "sidewalk",
    7: "trunk",
    8: "tree",
    9: "far",
    10: "occluder",
}
"""The value of each class in a map and its renderer material (``facade.LABEL_*``); the
occluders are the cars and pedestrians drawn in front of the scene."""


def class_map_path(image: Path) -> Path:
    """Where the class map of a synthcity image lives.

    Args:
        image: An image path ``.../<city>/images/<split>/...<name>.jpg``.

    Returns:
        ``.../<city>/labels/<split>/...<name>.png``.

    Raises:
        DataError: The path has no ``images`` folder (not an image of a synthcity folder).
    """
    parts = PurePath(image).parts
    if "images" not in parts:
        raise DataError(
            f"{image} is not inside a synthcity 'images/' folder, so it has no class map; "
            "class maps exist only for images of 'vpr-bench data prepare synthcity --labels'."
        )
    cut = len(parts) - 1 - parts[::-1].index("images")
    rel = Path(*parts[cut + 1 :]).with_suffix(".png")
    return Path(*parts[:cut]) / LABELS_DIR / rel


def encode_class_map(label: np.ndarray) -> bytes:
    """PNG bytes (8-bit grey, fixed settings, so deterministic) of one ``[H, W]`` uint8 map."""
    import numpy as np
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(label, dtype=np.uint8), "L").save(buffer, "PNG")
    return buffer.getvalue()


def read_class_map(image: Path) -> np.ndarray:
    """The renderer class map of one synthcity image.

    Args:
        image: The image path (as in an :class:`~vpr_bench.data.ImageRecord`).

    Returns:
        ``[H, W]`` uint8 class values (:data:`CLASS_NAMES`), the image's size.

    Raises:
        DataError: The map is missing or unreadable (one line saying how to generate them).
    """
    path = class_map_path(image)
    import numpy as np

    try:
        from PIL import Image

        with Image.open(path) as handle:
            data: np.ndarray = np.asarray(handle.convert("L"), dtype=np.uint8)
    except (OSError, ValueError) as exc:
        city = _city_folder(path)
        raise DataError(
            f"No readable synthcity class map {path} for {Path(image).name} ({_reason(exc)}); "
            f"generate them with 'vpr-bench data prepare synthcity --labels --size "
            f"{_size(city)} --root {city.parent}' (images and manifest stay the same)."
        ) from exc
    return data


def _city_folder(label_path: Path) -> Path:
    parts = label_path.parts
    cut = len(parts) - 1 - parts[::-1].index(LABELS_DIR)
    return Path(*parts[:cut])


def _size(city: Path) -> str:
    name = city.name
    return name.removeprefix("synthcity-") if name.startswith("synthcity-") else "SIZE"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError):
        return "missing"
    return type(exc).__name__


def labels_manifest(
    generator: str, version: int, size: str, seed: int, count: int, sha256: str
) -> dict[str, Any]:
    """The content of ``labels/labels.json``."""
    return {
        "generator": generator,
        "generator_version": version,
        "size": size,
        "seed": seed,
        "files": count,
        "sha256": sha256,
    }
