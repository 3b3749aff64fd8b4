"""Condition lists (user-supplied appearance labels): parsing and every bad-input message."""

from __future__ import annotations

from pathlib import Path

import pytest

from vpr_bench.data.conditions import read_condition_list
from vpr_bench.errors import DataError

NAMES = ("00010.jpg", "00011.jpg", "00012.jpg")
TOKYO = ("day", "sunset", "night")


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "conditions.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_labels_come_back_in_query_order_with_comments_stems_and_spaces(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "# labels from my own notes\nname,condition\n00012.jpg,night\n\n 00010 , day\n"
        "# the sunset one\n00011.jpg,sunset\n",
    )
    assert read_condition_list(path, NAMES, TOKYO) == ("day", "sunset", "night")


def test_any_label_when_the_dataset_has_no_fixed_set(tmp_path: Path) -> None:
    path = _write(tmp_path, "condition,name\nrain,00010.jpg\nsnow,00011.jpg\nrain,00012.jpg\n")
    assert read_condition_list(path, NAMES) == ("rain", "snow", "rain")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name,label\n00010.jpg,day\n", "condition is missing (found: name,label)"),
        ("", "name, condition is missing (found: nothing)"),
        (
            "# c\nname,condition\n00010.jpg,day\n# c\n00099.jpg,day\n",
            "line 5: '00099.jpg' is not a query of this split (query names look like '00010.jpg')",
        ),
        (
            "name,condition\n00010.jpg,dawn\n",
            "line 2: the condition of '00010.jpg' is 'dawn'; it must be one of day, night, sunset",
        ),
        ("name,condition\n00010.jpg,\n", "the condition of '00010.jpg' is ''"),
        (
            "name,condition\n00010.jpg,day\n00010,night\n",
            "line 3: '00010.jpg' is listed twice; keep one line",
        ),
        (
            "name,condition\n00011.jpg,day\n",
            "gives a condition for 1 of 3 queries; 2 are missing, e.g. 00010.jpg, 00012.jpg",
        ),
    ],
)
def test_bad_lists_name_the_file_line_and_fix(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(DataError) as caught:
        read_condition_list(path, NAMES, TOKYO)
    assert str(path) in str(caught.value)
    assert message in str(caught.value)


def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "conditions.csv"
    path.write_bytes(b"name,condition\n\xff\xfe,day\n")
    with pytest.raises(DataError, match="Cannot read the condition list .*conditions.csv"):
        read_condition_list(path, NAMES, TOKYO)
    with pytest.raises(DataError, match="Cannot read the condition list"):
        read_condition_list(tmp_path / "absent.csv", NAMES, TOKYO)
