"""Class maps of the synthetic city: ``data prepare synthcity --labels``."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from vpr_bench.data import SYNTHCITY_CLASS_NAMES, read_synthcity_class_map
from vpr_bench.data.synthcity import has_labels, prepare, read_manifest
from vpr_bench.data.synthcity.labels import class_map_path
from vpr_bench.errors import DataError


def _digests(folder: Path, pattern: str) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob(pattern))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def cities(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    plain = prepare(tmp_path_factory.mktemp("plain"), "tiny", seed=0, progress=False)
    labelled = prepare(tmp_path_factory.mktemp("lab"), "tiny", seed=0, progress=False, labels=True)
    return plain, labelled


def test_labels_leave_images_and_manifest_unchanged(cities: tuple[Path, Path]) -> None:
    plain, labelled = cities
    assert _digests(plain, "*.jpg") == _digests(labelled, "*.jpg")
    assert read_manifest(plain) == read_manifest(labelled)
    assert (plain / "manifest.json").read_bytes() == (labelled / "manifest.json").read_bytes()
    assert not (plain / "labels").exists()
    assert has_labels(labelled) and not has_labels(plain)
    assert not list((labelled / "images").rglob("*.png"))  # a reader would list them as images


def test_every_image_has_a_map_of_its_size(cities: tuple[Path, Path]) -> None:
    from PIL import Image

    _, labelled = cities
    images = sorted((labelled / "images").rglob("*.jpg"))
    maps = sorted((labelled / "labels").rglob("*.png"))
    assert (
        len(images)
        == len(maps)
        == json.loads((labelled / "labels/labels.json").read_text())["files"]
    )
    seen: set[int] = set()
    for image in images[::7]:
        label = read_synthcity_class_map(image)
        with Image.open(image) as handle:
            assert label.shape == (handle.height, handle.width)
        assert label.dtype == np.uint8
        seen |= set(np.unique(label).tolist())
    assert seen <= set(SYNTHCITY_CLASS_NAMES)
    assert {0, 1, 5} <= seen  # sky, wall and road are in almost every view
    assert any(10 in np.unique(read_synthcity_class_map(p)) for p in images)  # occluders


def test_maps_follow_the_pixels(cities: tuple[Path, Path]) -> None:
    """Sky pixels of a day image are bright blue-grey; road pixels are dark grey."""
    from PIL import Image

    _, labelled = cities
    day = [p for p in (labelled / "images/test/database").glob("*.jpg")][:5]
    for image in day:
        rgb = np.asarray(Image.open(image).convert("RGB"), np.float32) / 255.0
        label = read_synthcity_class_map(image)
        sky, road = label == 0, label == 5
        if sky.sum() > 20 and road.sum() > 20:
            assert rgb[sky].mean(axis=0)[2] > rgb[road].mean(axis=0)[2] + 0.2


def test_labels_are_deterministic_and_added_to_an_existing_city(
    cities: tuple[Path, Path], tmp_path: Path
) -> None:
    plain, labelled = cities
    copy = tmp_path / "synthcity-tiny"
    shutil.copytree(plain, copy)
    images_before = _digests(copy, "*.jpg")
    assert prepare(tmp_path, "tiny", seed=0, progress=False, labels=True) == copy
    assert _digests(copy, "*.jpg") == images_before
    assert _digests(copy / "labels", "*") == _digests(labelled / "labels", "*")
    assert (copy / "labels/labels.json").read_bytes() == (
        labelled / "labels/labels.json"
    ).read_bytes()
    assert not [p for p in tmp_path.rglob(".*") if p.name.endswith((".partial", ".old"))]


def test_missing_map_says_how_to_generate(cities: tuple[Path, Path]) -> None:
    plain, _ = cities
    image = sorted((plain / "images/train/database").glob("*.jpg"))[0]
    assert class_map_path(image) == plain / "labels/train/database" / (image.stem + ".png")
    with pytest.raises(DataError) as info:
        read_synthcity_class_map(image)
    message = str(info.value)
    assert "\n" not in message
    assert "vpr-bench data prepare synthcity --labels --size tiny" in message
    assert f"--root {plain.parent}" in message


def test_an_image_outside_a_city_has_no_map(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not inside a synthcity 'images/' folder"):
        read_synthcity_class_map(tmp_path / "x.jpg")


def test_cli_prepare_labels(cities: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    from vpr_bench.cli import main

    _, labelled = cities
    root = str(labelled.parent)  # reuses the labelled city: nothing is rendered again
    assert main(["data", "prepare", "synthcity", "--size", "tiny", "--root", root, "--labels"]) == 0
    assert "with class maps written to" in capsys.readouterr().out
