"""CMU-Seasons and RobotCar-Seasons in DISAM's re-packaged layout (datasets.md 7.2, A.3).

CMU (``<root>`` holds ``CMU_urban``, ``CMU_suburban``, ``CMU_park``):

* split ``urban-train``: ``CMU_urban/train00 … train11``, one folder per condition, ``00`` the
  reference; every image is a training image of domain = its folder index;
* split ``<area>`` (``urban``, ``suburban``, ``park``): every slice ``CMU_<area>/s<Y>`` with
  ``test00`` (the slice's database, domain ``"0"``), ``test01 … test11`` (queries, domain =
  folder index) and ``pose_new_s<Y>.txt`` (one line per database image,
  ``database/<name>.jpg qw qx qy qz tx ty tz``).

Retrieval compares a query with the database images of its own slice and camera only (the
camera is character 11 of the basename, ``img_00119_c0_…`` -> ``0``; DISAM
``disam_model.py:146, 266-274``): :func:`retrieval_groups` gives every image its group, and the
splits ask the harness for its grouped search (``extras["retrieval_within_groups"]``).

RobotCar (``<root>`` = ``RobotCar_rear``): ``test00`` (overcast-reference database), ``test01 …
test09`` (query conditions) and ``pose_new_rear.txt``; one group (the rear camera).

Neither has query poses: the benchmark server scores a submission (:mod:`vpr_bench_disam.submit`).
Images are found recursively with the reference's extensions (``data/image_folder.py``), sorted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from vpr_bench.data import GeoSplit, ImageRecord
from vpr_bench.errors import DataError

__all__ = [
    "CMU_AREAS",
    "CMU_DOMAINS",
    "IMAGE_SUFFIXES",
    "ROBOTCAR_DOMAINS",
    "ROBOTCAR_LABELS",
    "PoseTable",
    "cmu_camera",
    "load_cmu",
    "load_robotcar",
    "read_pose_file",
    "retrieval_groups",
]

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".ppm", ".bmp"})
"""The reference's image extensions (either case)."""

CMU_AREAS = ("urban", "suburban", "park")
"""The three CMU-Seasons areas (slices 2-8, 9-10 and 17, 18-22 and 24-25)."""

CMU_DOMAINS = 12
"""CMU-Seasons conditions: the reference and 11 query conditions (``test00 … test11``)."""

ROBOTCAR_DOMAINS = 10
"""RobotCar-Seasons: overcast-reference and 9 query conditions (``test00 … test09``)."""

ROBOTCAR_LABELS = tuple(f"robotcar-{i:02d}" for i in range(ROBOTCAR_DOMAINS))
"""RobotCar's domain labels (``test<k>`` -> ``robotcar-<k>``). They differ from CMU's folder
indices on purpose: CMU-trained encoders meet RobotCar images only through a domain map
(``model.domains`` naming, for each encoder, the RobotCar domain it serves; the authors'
RobotCar checkpoints are already mapped, README), never by folder index by accident."""

_SLICE_RE = re.compile(r"^s(\d+)$")
_DOMAIN_RE = re.compile(r"^(train|test)(\d+)$")


@dataclass(frozen=True)
class PoseTable:
    """The database poses of one pose file, keyed by image basename.

    Attributes:
        path: The pose file.
        poses: ``{basename: (qw, qx, qy, qz, tx, ty, tz)}`` as the file's text tokens (copied
            verbatim into submissions).
        names: The file's image names in file order (``database/<basename>``).
    """

    path: Path
    poses: Mapping[str, tuple[str, ...]]
    names: tuple[str, ...]


def read_pose_file(path: Path) -> PoseTable:
    """Read ``pose_new_s<Y>.txt`` / ``pose_new_rear.txt``: ``<name> qw qx qy qz tx ty tz``.

    Raises:
        DataError: Missing or unreadable file, a line without 8 fields or with a non-number,
            or a basename given twice; the message names the file and the line.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(
            f"Pose file {path} is missing; DISAM's layout has one per slice "
            "(<area>/s<Y>/pose_new_s<Y>.txt) listing every database image's pose."
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"Pose file {path} cannot be read ({exc}).") from exc
    poses: dict[str, tuple[str, ...]] = {}
    names: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        where = f"Pose file {path}, line {number}"
        if len(fields) != 8:
            raise DataError(
                f"{where}: expected 8 fields '<name> qw qx qy qz tx ty tz', got {len(fields)}."
            )
        try:
            [float(f) for f in fields[1:]]
        except ValueError:
            raise DataError(
                f"{where}: the 7 pose values must be numbers: {line.strip()!r}."
            ) from None
        base = fields[0].rsplit("/", 1)[-1]
        if base in poses:
            raise DataError(f"{where}: image {base} already has a pose line.")
        poses[base] = tuple(fields[1:])
        names.append(fields[0])
    if not poses:
        raise DataError(f"Pose file {path} has no pose lines.")
    return PoseTable(path, poses, tuple(names))


def cmu_camera(path: Path) -> str:
    """The CMU camera of an image: character 11 of its basename (``img_00119_c0_…`` -> ``0``).

    Raises:
        DataError: The basename is not in CMU's ``img_<5 digits>_c<k>_…`` form.
    """
    name = path.name
    if len(name) < 12 or not name.startswith("img_") or name[9:11] != "_c":
        raise DataError(
            f"Image {path} is not named like a CMU-Seasons image (img_NNNNN_cK_<time>us_rect.jpg); "
            "the camera is read from character 11 of the name."
        )
    return name[11]


def _images(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
    )


def _domain_folders(parent: Path, prefix: str, count: int) -> list[Path]:
    """``<prefix>00 … <prefix><count-1>`` under ``parent``, sorted as the reference globs them."""
    found = (
        sorted(
            p
            for p in parent.iterdir()
            if p.is_dir() and (m := _DOMAIN_RE.match(p.name)) and m[1] == prefix
        )
        if parent.is_dir()
        else []
    )
    expected = [f"{prefix}{i:02d}" for i in range(count)]
    names = [p.name for p in found]
    if names != expected:
        raise DataError(
            f"{parent} must hold the folders {expected[0]} … {expected[-1]} (one per domain, "
            f"{expected[0]} the reference), found {names or 'none'}."
        )
    return found


def _timestamp(path: Path) -> str | None:
    match = re.search(r"_(\d{10,})us", path.name)
    return match[1] if match else None


def load_cmu(root: Path, split: str) -> GeoSplit:
    """A split of CMU-Seasons in DISAM's layout (see the module docstring).

    Raises:
        DataError: Missing folders, a domain folder or pose file missing, a database image
            without a pose line (named), or a query camera without database images in its
            slice; every message names the path.
    """
    if split == "urban-train":
        return _train_split(root / "CMU_urban", "cmu-seasons-urban-train")
    area = split
    if area not in CMU_AREAS:
        raise DataError(
            f"CMU-Seasons has no split {split!r}; use urban-train or one of {CMU_AREAS}."
        )
    folder = root / f"CMU_{area}"
    slices = sorted(
        (int(m[1]), p)
        for p in (folder.iterdir() if folder.is_dir() else ())
        if p.is_dir() and (m := _SLICE_RE.match(p.name))
    )
    if not slices:
        raise DataError(
            f"{folder} holds no slice folders s<Y> (DISAM's layout: CMU_{area}/s<Y>/test00 … "
            f"test11 and pose_new_s<Y>.txt); check --data-root."
        )
    database: list[ImageRecord] = []
    queries: list[ImageRecord] = []
    poses: dict[str, tuple[str, ...]] = {}
    db_groups: list[str] = []
    query_groups: list[str] = []
    for number, slice_dir in slices:
        table = read_pose_file(slice_dir / f"pose_new_s{number}.txt")
        folders = _domain_folders(slice_dir, "test", CMU_DOMAINS)
        slice_db = _records(folders[0], "0")
        for record in slice_db:
            if record.path.name not in table.poses:
                raise DataError(
                    f"Database image {record.path} has no line in {table.path}; every test00 "
                    "image needs its pose (remove the image or restore its line)."
                )
            poses[record.path.name] = table.poses[record.path.name]
        slice_queries = [r for k, f in enumerate(folders[1:], start=1) for r in _records(f, str(k))]
        db_cameras = {cmu_camera(r.path) for r in slice_db}
        for record in slice_queries:
            camera = cmu_camera(record.path)
            if camera not in db_cameras:
                raise DataError(
                    f"Query {record.path} is from camera c{camera}, but slice s{number} has no "
                    f"database image of that camera in {folders[0]}; retrieval compares only "
                    "images of the same slice and camera."
                )
        database += slice_db
        queries += slice_queries
        db_groups += [f"s{number}/c{cmu_camera(r.path)}" for r in slice_db]
        query_groups += [f"s{number}/c{cmu_camera(r.path)}" for r in slice_queries]
    return GeoSplit(
        name=f"cmu-seasons-{area}",
        database=tuple(database),
        queries=tuple(queries),
        root=root,
        extras={
            "poses": poses,
            "db_groups": tuple(db_groups),
            "query_groups": tuple(query_groups),
            "retrieval_within_groups": True,
            "submission": "cmu",
        },
    )


def load_robotcar(root: Path, split: str = "test") -> GeoSplit:
    """RobotCar-Seasons (rear camera): ``test00 … test09`` and ``pose_new_rear.txt``.

    Raises:
        DataError: Missing folders or pose file, or a database image without a pose line.
    """
    if split != "test":
        raise DataError(f"RobotCar-Seasons has no split {split!r}; use test.")
    table = read_pose_file(root / "pose_new_rear.txt")
    folders = _domain_folders(root, "test", ROBOTCAR_DOMAINS)
    database = _records(folders[0], ROBOTCAR_LABELS[0])
    for record in database:
        if record.path.name not in table.poses:
            raise DataError(
                f"Database image {record.path} has no line in {table.path}; every test00 image "
                "needs its pose (remove the image or restore its line)."
            )
    queries = [
        r for k, f in enumerate(folders[1:], start=1) for r in _records(f, ROBOTCAR_LABELS[k])
    ]
    return GeoSplit(
        name="robotcar-seasons-test",
        database=tuple(database),
        queries=tuple(queries),
        root=root,
        extras={
            "poses": {r.path.name: table.poses[r.path.name] for r in database},
            "db_groups": ("rear",) * len(database),
            "query_groups": ("rear",) * len(queries),
            "retrieval_within_groups": True,
            "submission": "robotcar",
        },
    )


def _records(folder: Path, domain: str) -> list[ImageRecord]:
    images = _images(folder)
    if not images:
        raise DataError(f"{folder} holds no images (jpg, png, ppm or bmp).")
    return [ImageRecord(path=p, domain=domain, timestamp=_timestamp(p)) for p in images]


def _train_split(folder: Path, name: str) -> GeoSplit:
    folders = _domain_folders(folder, "train", CMU_DOMAINS)
    images = [r for k, f in enumerate(folders) for r in _records(f, str(k))]
    return GeoSplit(name=name, database=tuple(images), queries=(), root=folder.parent)


def retrieval_groups(split: GeoSplit) -> tuple[Sequence[str], Sequence[str]]:
    """``(database groups, query groups)``: a query is compared with its own group only.

    Raises:
        DataError: The split was not read by this module (it carries no groups).
    """
    db = split.extras.get("db_groups")
    q = split.extras.get("query_groups")
    if not isinstance(db, Iterable) or not isinstance(q, Iterable):
        raise DataError(
            f"Split {split.name} has no retrieval groups; it must be read by the cmu-seasons or "
            "robotcar-seasons reader."
        )
    return tuple(db), tuple(q)
