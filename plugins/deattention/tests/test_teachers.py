"""The label -> mask tables, the teachers, M_gt and the mask cache."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from vpr_bench.errors import ConfigError, DataError
from vpr_bench_deattention.labels import CITYSCAPES_TRAIN_IDS, keep_table
from vpr_bench_deattention.teachers import (
    FolderTeacher,
    MaskCache,
    SynthCityTeacher,
    build_teacher,
    mask_target,
)


def test_cityscapes_table_final_model() -> None:
    table = keep_table("cityscapes", ("human", "vehicle", "sky"))
    zero = {name for i, name in enumerate(CITYSCAPES_TRAIN_IDS) if table[i] == 0}
    assert zero == {
        "sky",
        "person",
        "rider",
        "car",
        "truck",
        "bus",
        "train",
        "motorcycle",
        "bicycle",
    }
    assert table[19:].min() == 1.0  # unlabelled / ignore ids are kept


def test_cityscapes_table_deattention_only_and_others() -> None:
    table = keep_table("cityscapes", ("human", "vehicle"))
    assert list(np.flatnonzero(table[:19] == 0)) == list(range(11, 19))
    assert list(np.flatnonzero(keep_table("cityscapes", ("flat", "object"))[:19] == 0)) == [
        0,
        1,
        5,
        6,
        7,
    ]
    assert keep_table("cityscapes", ()).min() == 1.0


def test_synthcity_table() -> None:
    assert list(np.flatnonzero(keep_table("synthcity", ("human", "vehicle", "sky"))[:11] == 0)) == [
        0,
        10,
    ]
    assert list(np.flatnonzero(keep_table("synthcity", ("human",))[:11] == 0)) == [10]
    assert list(np.flatnonzero(keep_table("synthcity", ("nature",))[:11] == 0)) == [7, 8]


def test_unknown_category_is_refused_with_the_list() -> None:
    with pytest.raises(ConfigError, match="unknown category 'people'; choose from: flat"):
        keep_table("cityscapes", ("people",))


def test_mask_target_is_bicubic_align_corners_unclamped() -> None:
    keep = torch.zeros(8, 8)
    keep[:, 4:] = 1.0
    target = mask_target(keep, (6, 6))
    assert target.shape == (1, 6, 6)
    expected = torch.nn.functional.interpolate(
        keep[None, None], size=(6, 6), mode="bicubic", align_corners=True
    )[0]
    torch.testing.assert_close(target, expected, rtol=0, atol=0)
    assert float(target.min()) < 0.0 and float(target.max()) > 1.0  # over/undershoot kept
    torch.testing.assert_close(mask_target(torch.ones(6, 9), (3, 4)), torch.ones(1, 3, 4))


def test_no_teacher_refuses_in_one_line_naming_the_three() -> None:
    with pytest.raises(ConfigError) as info:
        build_teacher("", ("human",))
    message = str(info.value)
    assert "\n" not in message
    for name in ("synthcity", "folder", "vainf-deeplabv3plus"):
        assert name in message
    with pytest.raises(ConfigError, match="choose one of: synthcity, folder"):
        build_teacher("deeplab", ("human",))


def test_synthcity_teacher_reads_renderer_labels(labelled_city: Path) -> None:
    from vpr_bench.data import read_synthcity_class_map

    image = sorted((labelled_city / "images/train/database").glob("*.jpg"))[0]
    teacher = SynthCityTeacher(("human", "vehicle", "sky"))
    keep = teacher.keep(image, None)
    labels = read_synthcity_class_map(image)
    assert keep.shape == labels.shape
    assert torch.equal(keep == 0, torch.from_numpy((labels == 0) | (labels == 10)))
    assert teacher.identity != SynthCityTeacher(("human", "vehicle")).identity


def test_synthcity_teacher_without_labels_says_how(tmp_path: Path) -> None:
    image = tmp_path / "synthcity-tiny/images/train/database/x.jpg"
    with pytest.raises(DataError, match="data prepare synthcity --labels"):
        SynthCityTeacher(("sky",)).check(image)


def test_folder_teacher(tmp_path: Path) -> None:
    from PIL import Image

    maps = tmp_path / "maps"
    maps.mkdir()
    labels = np.array([[0, 10, 11], [13, 255, 2]], np.uint8)
    Image.fromarray(labels, "L").save(maps / "img1.png")
    teacher = build_teacher("folder", ("human", "vehicle", "sky"), folder=str(maps))
    assert isinstance(teacher, FolderTeacher)
    keep = teacher.keep(tmp_path / "city/img1.jpg", None)
    torch.testing.assert_close(keep, torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]]))
    digest = hashlib.sha256((maps / "img1.png").read_bytes()).hexdigest()
    assert teacher.source_digest(tmp_path / "img1.jpg") == digest
    with pytest.raises(DataError, match="No class map .*img2.png"):
        teacher.keep(tmp_path / "img2.jpg", None)
    with pytest.raises(ConfigError, match="teacher_folder"):
        build_teacher("folder", ("sky",))
    with pytest.raises(ConfigError, match="is not a folder"):
        build_teacher("folder", ("sky",), folder=str(tmp_path / "none"))


def test_mask_cache_round_trip_and_keys(tmp_path: Path) -> None:
    cache = MaskCache(tmp_path / "cache")
    key = MaskCache.key("teacher", "image", "", (3, 4))
    assert cache.get(key) is None
    mask = torch.rand(1, 3, 4)
    cache.put(key, mask)
    got = cache.get(key)
    assert got is not None and torch.equal(got, mask)
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [f"{key}.npy"]  # no temp left
    assert (
        len(
            {
                key,
                MaskCache.key("teacher2", "image", "", (3, 4)),
                MaskCache.key("teacher", "image2", "", (3, 4)),
                MaskCache.key("teacher", "image", "map", (3, 4)),
                MaskCache.key("teacher", "image", "", (4, 3)),
            }
        )
        == 5
    )
