"""The dataset spec of the embedded city and its loaders (importable without numpy or torch).

Which size is loaded: ``root`` may be a generated folder (``.../synthcity-<size>``, any size: it
holds a ``manifest.json``) or the parent cache folder (the ``default_root``
``~/.cache/vpr-bench/synthcity`` or ``$VPR_BENCH_DATA/synthcity``). Given the parent,
:func:`load_split` uses ``synthcity-small`` and generates it (seed 0, logged) when it is missing.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from vpr_bench.errors import DataError, UsageError
from vpr_bench.protocol import EvalProtocol, ResizePolicy
from vpr_bench.specs import DatasetSpec

if TYPE_CHECKING:
    from vpr_bench.data.split import GeoSplit, ImageRecord

__all__ = ["DEFAULT_SIZE", "SPLITS", "SYNTHCITY", "dataset_folder", "load_pairs", "load_split"]

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
DEFAULT_SIZE = "small"
"""The size used when the loader is given the parent cache folder."""
PAIR_DOMAINS = ("day", "night")


def dataset_folder(root: Path) -> Path:
    """The generated folder to read for ``root`` (generating ``synthcity-small`` if needed).

    Inside :func:`vpr_bench.data.roots.read_only` nothing is generated: a missing folder is a
    :class:`~vpr_bench.errors.DataError` saying how to generate it.

    Args:
        root: A generated ``synthcity-<size>`` folder, or the folder that holds them.

    Returns:
        A folder holding ``manifest.json`` and ``images/``.

    Raises:
        DataError: An incomplete generation, or (read-only) no generation at all.
    """
    root = Path(root).expanduser()
    if (root / "manifest.json").is_file():
        return root
    if root.name.startswith("synthcity-") and root.is_dir():
        raise DataError(
            f"{root} has no manifest.json, so it is not a complete synthcity generation; "
            f"delete it and run `vpr-bench data prepare synthcity` (or pass its parent folder)."
        )
    from vpr_bench.data.roots import generation_allowed
    from vpr_bench.data.synthcity import folder_name, prepare

    target = root / folder_name(DEFAULT_SIZE)
    if not generation_allowed():
        if (target / "manifest.json").is_file():
            return target
        raise DataError(
            f"{root} holds no synthcity generation ({target / 'manifest.json'} is missing) and "
            "checking never writes; generate it with `vpr-bench data prepare synthcity --root "
            f"{root}`, or pass the synthcity-<size> folder itself."
        )
    if not (target / "manifest.json").is_file():
        log.warning("synthcity: %s is missing; generating size %s now", target, DEFAULT_SIZE)
    return prepare(root, DEFAULT_SIZE, seed=0)


def load_split(root: Path, split: str) -> GeoSplit:
    """Read one split of a generated city through the datasets_vg reader.

    Args:
        root: A ``synthcity-<size>`` folder or its parent (see the module docstring).
        split: ``train``, ``val`` or ``test``.

    Returns:
        The split; every record's ``condition`` and ``domain`` are its file name's note field.

    Raises:
        UsageError: ``split`` is not one of :data:`SPLITS`.
        DataError: The folder is incomplete or not a synthcity generation.
    """
    from vpr_bench.data.formats.datasets_vg import read_vg_images
    from vpr_bench.data.split import GeoSplit
    from vpr_bench.data.synthcity import read_manifest

    if split not in SPLITS:
        raise UsageError(f"synthcity has no split {split!r}; its splits are {', '.join(SPLITS)}.")
    folder = dataset_folder(root)
    manifest = read_manifest(folder) or {}
    images = folder / "images" / split
    database = read_vg_images(images / "database", note_as_condition=True)
    queries = read_vg_images(images / "queries", note_as_condition=True)
    return GeoSplit(
        name=f"synthcity-{split}",
        database=database,
        queries=queries,
        root=folder,
        manifest=f"{manifest.get('sha256', '')}:{split}",
        extras={
            "size": manifest.get("size"),
            "seed": manifest.get("seed"),
            "generator_version": manifest.get("generator_version"),
        },
    )


def load_pairs(root: Path) -> list[tuple[ImageRecord, ImageRecord]]:
    """The paired (day, night) renders of train places, for the domain-pair trainers.

    Args:
        root: A ``synthcity-<size>`` folder or its parent.

    Returns:
        ``(day, night)`` records of the same pose, in file-name order; each record's
        ``condition`` and ``domain`` are its folder name (``"day"`` or ``"night"``).

    Raises:
        DataError: The two pair folders do not hold the same file names.
    """
    from vpr_bench.data.formats.datasets_vg import read_vg_images

    folder = dataset_folder(root)
    sides = []
    for domain in PAIR_DOMAINS:
        records = read_vg_images(folder / "images" / "train" / "pairs" / domain)
        sides.append(
            {r.path.name: dataclasses.replace(r, condition=domain, domain=domain) for r in records}
        )
    day, night = sides
    if set(day) != set(night):
        odd = sorted(set(day) ^ set(night))[:3]
        raise DataError(
            f"{folder}/images/train/pairs: the day and night folders must hold the same file "
            f"names, but {odd} is in only one; regenerate the dataset."
        )
    return [(day[name], night[name]) for name in sorted(day)]


def _protocol(split: str) -> EvalProtocol:
    return EvalProtocol(
        name=f"synthcity-{split}",
        split=split,
        db_resize=ResizePolicy("native"),
        query_resize=ResizePolicy("native"),
        radius_m=25.0,
        no_positive="fail",
        notes="Embedded procedural city; queries in day, dusk, night, fog, rain, season.",
    )


SYNTHCITY = DatasetSpec(
    name="synthcity",
    version=3,  # == writer.GENERATOR_VERSION: the generated images are the data (a test checks)
    splits=SPLITS,
    load="vpr_bench.data.synthcity.spec:load_split",
    load_pairs="vpr_bench.data.synthcity.spec:load_pairs",
    protocols=(_protocol("test"), _protocol("val")),
    default_split="test",
    provides=frozenset({"train", "conditions", "domain-pairs", "generated"}),
    paper="vpr-bench embedded procedural city (generated, deterministic)",
    license="generated data, same licence as vpr-bench (MIT)",
    default_root="~/.cache/vpr-bench/synthcity",
    summary="Procedural city, generated locally: day/dusk/night/fog/rain/season queries",
)
"""The embedded city: ``--dataset synthcity`` (test), ``synthcity-val``, ``synthcity-train``."""
