"""The plain CSV format: happy path and every documented error."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.data.loading import load_builtin
from vpr_bench.data.geo import split_positives
from vpr_bench.errors import DataError


def _write(root: Path, db: str, q: str) -> None:
    (root / "database.csv").write_text(db)
    (root / "queries.csv").write_text(q)


def test_csv_folder(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "path,easting,northing\ndb/a.jpg,100,200\n/abs/b.jpg,100,230\n",
        "path,easting,northing,condition,extra\nq/a.jpg,100,210,night,x\nq/b.jpg,500,500,,y\n",
    )
    split = load_builtin("csv-folder", tmp_path)
    assert split.database[0].path == tmp_path / "db" / "a.jpg"
    assert split.database[1].path == Path("/abs/b.jpg")
    assert [q.condition for q in split.queries] == ["night", None]
    assert [p.tolist() for p in split_positives(split)] == [[0, 1], []]
    assert split.protocol is not None and split.protocol.name == "csv-folder"


@pytest.mark.parametrize(
    ("db", "message"),
    [
        (
            "file,east,northing\na.jpg,1,2\n",
            r"database\.csv lacks the column\(s\) path, easting: its header is file,east,northing",
        ),
        (
            "path,easting,northing\na.jpg,one,2\n",
            r"database\.csv, line 2: easting/northing must be numbers",
        ),
        ("path,easting,northing\n", r"database\.csv has a header but no image rows"),
        ("", r"lacks the column\(s\) path, easting, northing: its header is \(empty\)"),
    ],
)
def test_csv_errors(tmp_path: Path, db: str, message: str) -> None:
    _write(tmp_path, db, "path,easting,northing\nq.jpg,1,2\n")
    with pytest.raises(DataError, match=message):
        load_builtin("csv-folder", tmp_path)


def test_missing_csv(tmp_path: Path) -> None:
    (tmp_path / "database.csv").write_text("path,easting,northing\na.jpg,1,2\n")
    with pytest.raises(DataError, match=r"Missing .*queries\.csv: a csv-folder dataset needs"):
        load_builtin("csv-folder", tmp_path)
