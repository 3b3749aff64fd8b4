"""The data identity every record carries: stable when a folder moves, new when data changes."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from vpr_bench.data.identity import data_identity
from vpr_bench.data.split import GeoSplit, ImageRecord


def _split(root: Path, east: float = 0.0, positives=None) -> GeoSplit:  # type: ignore[no-untyped-def]
    db = tuple(
        ImageRecord(root / "ref" / f"{i}.jpg", easting=float(i), northing=0.0) for i in range(3)
    )
    q = (ImageRecord(root / "query" / "0.jpg", easting=east, northing=0.0),)
    return GeoSplit("corridor-test", db, q, root=root, positives=positives, manifest="gen:abc")


def test_the_identity_names_the_folder_and_survives_a_move(tmp_path: Path) -> None:
    here = data_identity(_split(tmp_path / "a" / "corridor"))
    moved = data_identity(_split(tmp_path / "b" / "corridor"))
    assert here == moved
    assert here["name"] == "corridor" and len(here["digest"]) == 16 and here["reader"] == "gen:abc"


def test_other_positions_or_ground_truth_are_other_data(tmp_path: Path) -> None:
    base = data_identity(_split(tmp_path / "corridor"))
    assert data_identity(_split(tmp_path / "corridor", east=1.0))["digest"] != base["digest"]
    lists = data_identity(_split(tmp_path / "corridor", positives=((0, 1),)))
    assert lists["digest"] != base["digest"]
    renamed = dataclasses.replace(_split(tmp_path / "corridor"), root=tmp_path / "office")
    assert data_identity(renamed)["name"] == "office"
