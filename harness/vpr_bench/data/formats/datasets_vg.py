"""gmberton's "datasets_vg" folders: positions in the file names (docs/datasets.md section 5).

A name is 14 ``@``-separated fields between a leading ``@`` and a trailing ``@.jpg``::

    @ east @ north @ zone @ letter @ lat @ lon @ pano_id @ tile @ heading @ pitch @ roll
      @ height @ timestamp @ note @ .jpg

so ``basename.split("@")`` has 16 parts. Only the basename is split (an ``@`` in a parent
folder must not shift the fields). Nordland's non-conforming names (``@0@<north>@@@@@<idx>@...``,
empty zone/lat/lon, fake northing = index x 25/10.5 m) parse too.

Root layouts accepted by :func:`load_vg_folder`: ``<root>/images/<split>/{database,queries}``,
``<root>/<split>/{database,queries}``, or (split ``test`` only) ``<root>/{database,queries}``.
A folder's image list comes from the sibling ``<folder>_images_paths.txt`` when it exists (one
path relative to the folder per line, kept in file order, as VPR-methods-evaluation does);
otherwise from a recursive listing of ``.jpg``/``.jpeg``/``.png`` files (any case), sorted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePath

from vpr_bench.data.formats import IMAGE_SUFFIXES, require_dir, split_manifest
from vpr_bench.data.split import GeoSplit, ImageRecord
from vpr_bench.errors import DataError

__all__ = ["VgName", "list_vg_images", "load_vg_folder", "parse_vg_name", "read_vg_images"]

_TEMPLATE = (
    "@east@north@zone@letter@lat@lon@pano_id@tile@heading@pitch@roll@height@timestamp@note@.jpg"
)


@dataclass(frozen=True)
class VgName:
    """The 14 data fields of a datasets_vg file name.

    Attributes:
        utm_east: UTM easting in metres (field 1).
        utm_north: UTM northing in metres (field 2).
        utm_zone: UTM zone number, None when empty (Nordland).
        utm_letter: UTM zone letter, ``""`` when empty.
        latitude: Latitude in degrees, None when empty.
        longitude: Longitude in degrees, None when empty.
        pano_id: Panorama / place id (free text; may contain ``-``, ``_``, ``.jpg``).
        tile_num: Crop index within the panorama (text, may be empty).
        heading: Heading in degrees (text, may be empty).
        pitch: Pitch (text, may be empty).
        roll: Roll (always empty in practice).
        height: Height (always empty in practice).
        timestamp: ``YYYY[MM[DD[_hh[mm[ss]]]]]`` or empty.
        note: Free text (e.g. ``pitch1_yaw1``, ``day_forward_nairobi``) or empty.
    """

    utm_east: float
    utm_north: float
    utm_zone: int | None
    utm_letter: str
    latitude: float | None
    longitude: float | None
    pano_id: str
    tile_num: str
    heading: str
    pitch: str
    roll: str
    height: str
    timestamp: str
    note: str


def _optional_float(text: str) -> float | None:
    return float(text) if text else None


def parse_vg_name(name: str) -> VgName:
    """Parse the basename of ``name`` (a path or a file name) as a datasets_vg name.

    Raises:
        DataError: The basename does not have the 16 ``@``-separated parts, or its easting /
            northing / zone / lat / lon are not numbers.
    """
    base = PurePath(name).name
    parts = base.split("@")
    if len(parts) != 16 or parts[0] != "" or not parts[15].startswith("."):
        raise DataError(
            f"{name!r} is not a datasets_vg image name: expected {_TEMPLATE} (16 parts when the "
            f"file name is split on '@'), got {len(parts)} parts. Unlabelled folders (names "
            "without @east@north@) cannot be evaluated by position; list the images with their "
            "positions in database.csv/queries.csv and use the csv-folder dataset instead."
        )
    try:
        return VgName(
            utm_east=float(parts[1]),
            utm_north=float(parts[2]),
            utm_zone=int(parts[3]) if parts[3] else None,
            utm_letter=parts[4],
            latitude=_optional_float(parts[5]),
            longitude=_optional_float(parts[6]),
            pano_id=parts[7],
            tile_num=parts[8],
            heading=parts[9],
            pitch=parts[10],
            roll=parts[11],
            height=parts[12],
            timestamp=parts[13],
            note=parts[14],
        )
    except ValueError as exc:
        raise DataError(
            f"{name!r}: a numeric datasets_vg field is not a number ({exc}); easting and "
            f"northing (fields 1 and 2) are required, zone/lat/lon may be empty. "
            f"Expected {_TEMPLATE}."
        ) from exc


def list_vg_images(folder: Path) -> list[Path]:
    """The image paths of a datasets_vg folder (paths file, else sorted recursive listing).

    Raises:
        DataError: The folder does not exist, or holds no image.
    """
    folder = require_dir(Path(folder), "Image folder", "Check the dataset root and split.")
    paths_file = folder.parent / f"{folder.name}_images_paths.txt"
    if paths_file.is_file():
        lines = paths_file.read_text(encoding="utf-8").splitlines()
        paths = [folder / line.strip() for line in lines if line.strip()]
        if not paths:
            raise DataError(f"{paths_file} lists no image; delete it or fill it in.")
        return paths
    paths = sorted(
        (p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()),
        key=lambda p: p.as_posix(),
    )
    if not paths:
        raise DataError(
            f"{folder} holds no .jpg/.jpeg/.png image (searched recursively) and there is no "
            f"{paths_file.name} beside it."
        )
    return paths


def read_vg_images(
    folder: Path, *, note_as_condition: bool = False, pano_as_place: bool = True
) -> tuple[ImageRecord, ...]:
    """Read one datasets_vg folder into image records.

    Args:
        folder: The folder (e.g. ``images/test/database``).
        note_as_condition: Put the note field (index 14) into ``condition`` and ``domain``.
        pano_as_place: Use the pano_id field (index 7) as ``place_id``.

    Returns:
        One record per image, in listing order (see :func:`list_vg_images`).

    Raises:
        DataError: A file name is not a datasets_vg name (the message names the file).
    """
    records = []
    for path in list_vg_images(folder):
        fields = parse_vg_name(path.name)
        label = (fields.note or None) if note_as_condition else None
        records.append(
            ImageRecord(
                path=path,
                easting=fields.utm_east,
                northing=fields.utm_north,
                place_id=(fields.pano_id or None) if pano_as_place else None,
                condition=label,
                domain=label,
                timestamp=fields.timestamp or None,
            )
        )
    return tuple(records)


def _split_dir(root: Path, split: str) -> Path:
    for candidate in (root / "images" / split, root / split):
        if candidate.is_dir():
            return candidate
    if split == "test" and (root / "database").is_dir():
        return root
    raise DataError(
        f"No {split} split under {root}: looked for {root / 'images' / split}, {root / split}"
        + (f" and {root}/database" if split == "test" else "")
        + ". A datasets_vg root holds images/<split>/database and images/<split>/queries."
    )


def load_vg_folder(root: Path, split: str) -> GeoSplit:
    """Load split ``split`` of a datasets_vg dataset (database, then queries).

    Raises:
        DataError: The layout or a file name is not datasets_vg.
    """
    root = require_dir(Path(root), "vg-folder root", "Pass --root <dataset folder>.")
    split_dir = _split_dir(root, split)
    database = read_vg_images(split_dir / "database")
    queries = read_vg_images(split_dir / "queries")
    return GeoSplit(
        name=f"vg-folder-{split}",
        database=database,
        queries=queries,
        root=root,
        manifest=split_manifest(database, queries, root),
        extras={"split_dir": str(split_dir)},
    )
