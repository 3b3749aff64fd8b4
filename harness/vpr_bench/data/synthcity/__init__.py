"""synthcity: the embedded procedural city, vpr-bench's default dataset (generated, not downloaded).

A deterministic city of street grids in UTM zone 33T (origin easting 500 000 m, northing
4 500 000 m, about 40.65 N 15 E; the brief's northing 4 000 000 would lie in band S, not T).
Facades come from per-building random parameters (height, wall colour from a small shared
palette, window grids, frames, shutters, doors, shop windows, signboards with glyph patterns)
with street trees in front; a pinhole camera on the street looks at them (:mod:`.render`).

* Database: every ``db_spacing_m`` along every facade, on the street centre line, ``day``.
* Queries: anywhere along a facade (views overlap partly with database views up to ~8 m
  away), 1.5-4 m off the centre line (scale change), yaw +-20 deg, pitch 4-20 deg; conditions
  ``day``, ``dusk``, ``night``, ``fog``, ``rain``, ``season`` in equal numbers; half of them with
  occluders (cars, pedestrians), as are 15 % of database images.
* Splits: train, val and test are separate districts, 150 m apart (no image within 25 m of an
  image of another split).
* Pairs: ``images/train/pairs/{day,night}/`` hold the same train database poses rendered by day
  and by night under identical file names (note field ``pair``; the folder is the condition).

On disk (datasets_vg): ``<root>/synthcity-<size>/images/{train,val,test}/{database,queries}/``
with names ``@east@north@33@T@lat@lon@<place_id>@@<heading>@@@@@<condition>@.jpg``; latitude
and longitude are computed by an exact-to-1e-5-degree UTM inverse (:mod:`.utm`). A
``manifest.json`` records size, seed, generator version, counts per split/role/condition and a
sha256 over all files. Generation is atomic and deterministic (same seed, same bytes).

Calibration. Generator version 1 (``benchmarks/calibrate_synthcity.py``, size ``small``, seed
0, 25 m, brute-force kNN; test split: 528 database images, 600 queries, 23.9 positives per
query on average, so chance is about 4.5 %) left every model at 2-9 % R@1 on dusk, night and
fog. Version 2 dimmed the lit windows and set fog visibility to 14-26 m, which made dusk and
fog learnable, but its night (ambient 0.12-0.2, 45 % of the windows blazing over a black
facade) stayed unlearnable: night R@1 3 % untrained, 9 % after the quick NetVLAD, which never
placed more than 8 % of even its own night training queries. Version 3 lights the night
street instead (ambient 0.3-0.42, a fifth of the windows lit at half strength; the measured
variants are in :mod:`.conditions`). With it, ``make demo`` (NetVLAD-16 on the tiny trunk,
``quick`` profile, seed 43, 2-core CPU, 2026-11-30) measures R@1 on the test split: untrained
50.0 % (day 86, dusk 53, fog 63, night 10, rain 26, season 62), NetVLAD 70.3 % (night 38,
dusk 74), SARE 73.3 %, SARE-joint 74.2 %.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from vpr_bench.data.synthcity.labels import CLASS_NAMES, read_class_map
from vpr_bench.data.synthcity.sizes import SIZES, District, SynthCitySize
from vpr_bench.errors import DataError, UsageError
from vpr_bench.timing import phase

__all__ = [
    "CLASS_NAMES",
    "SIZES",
    "District",
    "SynthCitySize",
    "folder_name",
    "has_labels",
    "prepare",
    "read_class_map",
    "read_manifest",
]

log = logging.getLogger(__name__)


def folder_name(size: str) -> str:
    """The dataset folder name of a size, ``synthcity-<size>``."""
    return f"synthcity-{size}"


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The manifest of a generated folder, or None when there is none (or it is unreadable)."""
    try:
        data = json.loads((Path(folder) / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _matches(manifest: dict[str, Any] | None, size: str, seed: int) -> bool:
    from vpr_bench.data.synthcity.writer import GENERATOR, GENERATOR_VERSION

    return (
        manifest is not None
        and manifest.get("generator") == GENERATOR
        and manifest.get("generator_version") == GENERATOR_VERSION
        and manifest.get("size") == size
        and manifest.get("seed") == seed
    )


def has_labels(folder: Path) -> bool:
    """Whether a generated city folder holds the complete class maps of its images."""
    manifest = read_manifest(folder)
    if manifest is None:
        return False
    try:
        data = json.loads((Path(folder) / "labels" / "labels.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    keys = ("generator", "generator_version", "size", "seed")
    return isinstance(data, dict) and all(data.get(k) == manifest.get(k) for k in keys)


def prepare(
    root: Path, size: str = "small", seed: int = 0, progress: bool = True, labels: bool = False
) -> Path:
    """Generate the city of ``size`` under ``root`` (or reuse a complete earlier generation).

    Args:
        root: The parent folder; the dataset goes to ``root / "synthcity-<size>"``.
        size: A key of :data:`SIZES` (``"tiny"`` for tests, ``"small"`` for the demo).
        seed: The city seed; the same seed gives byte-identical files.
        progress: Show a progress bar while rendering (terminal only).
        labels: Also write each image's class map (:mod:`.labels`); a reused city without them
            gets them added, its images untouched.

    Returns:
        The dataset folder.

    Raises:
        UsageError: ``size`` is not a known size.
        DataError: The target exists but was not made by this generator (it is never deleted),
            or it cannot be written (full disk: the partial generation is removed).
    """
    if size not in SIZES:
        raise UsageError(
            f"Unknown synthcity size {size!r}; valid sizes: {', '.join(sorted(SIZES))}."
        )
    from vpr_bench.data.synthcity.writer import GENERATOR, generate, generate_labels

    root = Path(root).expanduser()
    target = root / folder_name(size)
    existing = read_manifest(target)
    if _matches(existing, size, seed):
        log.info("synthcity: reusing %s (manifest matches size %s, seed %d)", target, size, seed)
        if labels and not has_labels(target):
            count = generate_labels(target, SIZES[size], seed)
            log.info("synthcity: wrote %d class maps to %s/labels", count, target)
        return target
    if target.exists() and (existing is None or existing.get("generator") != GENERATOR):
        raise DataError(
            f"{target} exists but holds no synthcity manifest.json, so it is not a generated "
            "synthcity folder (or a foreign one); remove or rename it and run again."
        )
    log.info("synthcity: generating %s (size %s, seed %d)", target, size, seed)
    generate_into = target if not target.exists() else _sibling(target, ".new")
    made = [folder for folder in (root, *root.parents) if not folder.exists()]
    try:
        with phase("generate"):
            manifest = generate(generate_into, SIZES[size], seed, progress=progress, labels=labels)
    except OSError as exc:
        if _matches(read_manifest(target), size, seed) and (not labels or has_labels(target)):
            log.info("synthcity: %s was generated concurrently; using it", target)
            return target
        for folder in made:  # deepest first; only folders this call made, and only if empty
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise DataError(
            f"Cannot write {exc.filename or generate_into}: {exc.strerror or exc}; no part of "
            f"{target.name} was kept. Free disk space there or pass another --root."
        ) from exc
    if generate_into != target:  # replace an older generation (other seed or version)
        old = _sibling(target, ".old")
        os.replace(target, old)
        os.replace(generate_into, target)
        shutil.rmtree(old, ignore_errors=True)
    log.info("synthcity: wrote %d files to %s", manifest["files"], target)
    return target


def _sibling(target: Path, suffix: str) -> Path:
    """A fresh, not yet existing hidden path beside ``target``."""
    handle = tempfile.mkdtemp(prefix=f".{target.name}.", suffix=suffix, dir=target.parent)
    os.rmdir(handle)
    return Path(handle)
