"""datasets_vg names and folders, on the real CosPlace Tokyo queries and format-exact fixtures."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.data.loading import load_builtin
from vpr_bench.data.formats.datasets_vg import parse_vg_name, read_vg_images
from vpr_bench.errors import DataError

PITTS = "@0584334.39@4476910.88@17@T@040.43857@-080.00562@004561@00@@@@@@pitch1_yaw1@.jpg"
SFXL = (
    "@0544388.51@4172758.25@10@S@037.70098@-122.49646@kPnABhWJ1kA61eMNPLs1vQ@@210@@@@201606@@.jpg"
)
MSLS = (
    "@0241821.78@9862147.68@37@M@-01.24616@0036.67991@Oz2hnuwJn1QUBN95Y8SGZQ"
    "@@@@@@20180527@day_forward_nairobi@.jpg"
)
NORDLAND = "@0@0000023.8@@@@@10@@@@@@@@.jpg"


def test_parse_real_names() -> None:
    pitts = parse_vg_name("/a@b/c/" + PITTS)  # '@' in a parent folder must not shift fields
    assert (pitts.utm_east, pitts.utm_north, pitts.utm_zone, pitts.utm_letter) == (
        584334.39,
        4476910.88,
        17,
        "T",
    )
    assert (pitts.latitude, pitts.longitude) == (40.43857, -80.00562)
    assert (pitts.pano_id, pitts.tile_num, pitts.note) == ("004561", "00", "pitch1_yaw1")
    sf = parse_vg_name(SFXL)
    assert (sf.heading, sf.timestamp, sf.tile_num, sf.note) == ("210", "201606", "", "")
    msls = parse_vg_name(MSLS)
    assert (msls.latitude, msls.timestamp, msls.note) == (
        -1.24616,
        "20180527",
        "day_forward_nairobi",
    )
    nordland = parse_vg_name(NORDLAND)
    assert (nordland.utm_east, nordland.utm_north, nordland.utm_zone, nordland.latitude) == (
        0.0,
        23.8,
        None,
        None,
    )
    assert nordland.pano_id == "10"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("db1.jpg", r"'db1.jpg' is not a datasets_vg image name.*got 1 parts.*csv-folder"),
        ("@1@2@.jpg", "got 4 parts"),
        ("@east@4476910.88@17@T@@@p@@@@@@@@.jpg", "numeric datasets_vg field is not a number"),
    ],
)
def test_parse_rejects_non_vg_names(name: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        parse_vg_name(name)


def test_real_unlabelled_toy_set_is_rejected(shared_data: Path) -> None:
    toy = shared_data / "vpr_methods_evaluation_toy" / "toy_dataset"
    with pytest.raises(DataError, match=r"'db1\.jpg' is not a datasets_vg image name"):
        read_vg_images(toy / "database")
    with pytest.raises(DataError, match="is not a datasets_vg image name"):
        load_builtin("vg-folder", toy, "test")


def test_real_cosplace_queries_read(shared_data: Path) -> None:
    records = read_vg_images(shared_data / "cosplace_tokyo247_queries_vg", note_as_condition=True)
    assert len(records) == 5
    assert [r.place_id for r in records] == [
        "00399.jpg",
        "00405.jpg",
        "00417.jpg",
        "00432.jpg",
        "00171.jpg",
    ]
    assert records[0].easting == 381904.46 and records[0].condition is None


def _vg(i: int, note: str = "", pano: str = "p") -> str:
    return f"@{584000 + i:010.2f}@4476910.00@17@T@@@{pano}{i}@@@@@@2019@{note}@"


def test_folder_listing_suffixes_order_and_labels(
    tmp_path: Path, jpeg_writer: Callable[..., Path]
) -> None:
    folder = tmp_path / "db"
    jpeg_writer(folder / (_vg(2, "night") + ".JPG"))
    jpeg_writer(folder / "sub" / (_vg(1, "day") + ".jpeg"))
    jpeg_writer(folder / (_vg(0, "night") + ".png"))
    (folder / "notes.txt").write_text("ignored")
    records = read_vg_images(folder, note_as_condition=True)
    assert [r.easting for r in records] == [584000.0, 584002.0, 584001.0]  # by path: sub/ last
    assert [r.condition for r in records] == ["night", "night", "day"]
    assert [r.domain for r in records] == ["night", "night", "day"]
    assert records[1].timestamp == "2019" and records[1].place_id == "p2"
    plain = read_vg_images(folder, pano_as_place=False)
    assert {r.place_id for r in plain} == {None} and {r.condition for r in plain} == {None}


def test_images_paths_file_is_used_in_its_order(
    tmp_path: Path, jpeg_writer: Callable[..., Path]
) -> None:
    folder = tmp_path / "queries"
    for i in range(3):
        jpeg_writer(folder / (_vg(i) + ".jpg"))
    (tmp_path / "queries_images_paths.txt").write_text(f"{_vg(2)}.jpg\n{_vg(0)}.jpg\n\n")
    records = read_vg_images(folder)
    assert [r.easting for r in records] == [584002.0, 584000.0]


def test_load_vg_folder_layouts(tmp_path: Path, jpeg_writer: Callable[..., Path]) -> None:
    base = tmp_path / "pitts30k" / "images" / "test"
    for i in range(3):
        jpeg_writer(base / "database" / (_vg(i * 30) + ".jpg"))
    jpeg_writer(base / "queries" / (_vg(1) + ".jpg"))
    split = load_builtin("vg-folder", tmp_path / "pitts30k", "test")
    assert (len(split.database), len(split.queries)) == (3, 1)
    assert split.protocol is not None and split.protocol.name == "vg-folder"
    with pytest.raises(DataError, match=r"No val split under .*images/val"):
        load_builtin("vg-folder", tmp_path / "pitts30k", "val")
    (base / "queries" / (_vg(1) + ".jpg")).unlink()
    with pytest.raises(DataError, match=r"queries holds no \.jpg/\.jpeg/\.png image"):
        load_builtin("vg-folder", tmp_path / "pitts30k", "test")
