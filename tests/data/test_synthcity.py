from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from vpr_bench.data.synthcity import SIZES, prepare, read_manifest
from vpr_bench.data.synthcity.layout import CONDITIONS
from vpr_bench.data.synthcity.spec import SYNTHCITY
from vpr_bench.data.synthcity.utm import utm_to_latlon
from vpr_bench.data.synthcity.writer import GENERATOR_VERSION, vg_name
from vpr_bench.errors import DataError, UsageError


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepare(tmp_path_factory.mktemp("sc0"), "tiny", seed=0, progress=False)


def _names(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.jpg"))


def _utm(paths: list[Path]) -> np.ndarray:
    return np.array([(float(p.name.split("@")[1]), float(p.name.split("@")[2])) for p in paths])


def test_layout_and_manifest(city: Path) -> None:
    assert city.name == "synthcity-tiny"
    manifest = read_manifest(city)
    assert manifest is not None
    assert manifest["size"] == "tiny" and manifest["seed"] == 0
    files = _names(city / "images")
    assert manifest["files"] == len(files)
    for split in ("train", "val", "test"):
        for role in ("database", "queries"):
            on_disk = len(_names(city / "images" / split / role))
            assert on_disk == sum(manifest["counts"][split][role].values()) > 0
        assert set(manifest["counts"][split]["database"]) == {"day"}
    assert not [p for p in city.parent.iterdir() if p.name.startswith(".")]  # no temp left


def test_dataset_version_follows_the_generator() -> None:
    # Records carry DatasetSpec.version and leaderboards split tables on it: a new generator
    # version is new data, so results from two generations must never share a table.
    assert SYNTHCITY.version == GENERATOR_VERSION


def test_names_are_vg_names(city: Path) -> None:
    for path in _names(city / "images"):
        parts = path.name.split("@")
        assert len(parts) == 16, path.name
        assert parts[0] == "" and parts[15] == ".jpg"
        assert len(parts[1]) == 10 and len(parts[2]) == 10  # f'{e:0=10.2f}'
        assert parts[3:5] == ["33", "T"]
        lat, lon = utm_to_latlon(float(parts[1]), float(parts[2]), 33)
        assert len(parts[5]) == 9 and len(parts[6]) == 10  # f'{lat:0=9.5f}', f'{lon:0=10.5f}'
        # lat/lon come from the unrounded position: equal to the written UTM's within 1e-5.
        assert abs(float(parts[5]) - lat) < 1.5e-5 and abs(float(parts[6]) - lon) < 1.5e-5
        assert 0 <= int(parts[9]) < 360 and len(parts[9]) == 3
        assert parts[14] in (*CONDITIONS, "pair")


def test_vg_name_format_hand_computed() -> None:
    name = vg_name(500012.25, 4500001.0, "x01", -5.4, "fog")
    assert name.startswith("@0500012.25@4500001.00@33@T@040.65")
    assert name.endswith("@x01@@355@@@@@fog@.jpg")


def test_utm_inverse_matches_real_datasets_vg_names() -> None:
    # (east, north, zone) -> lat/lon written in real datasets_vg names (datasets.md 5.2).
    for east, north, zone, lat, lon in [
        (584334.39, 4476910.88, 17, 40.43857, -80.00562),
        (544388.51, 4172758.25, 10, 37.70098, -122.49646),
        (381904.46, 3946329.36, 54, 35.65375, 139.69540),
    ]:
        got_lat, got_lon = utm_to_latlon(east, north, zone)
        assert abs(got_lat - lat) < 2e-5 and abs(got_lon - lon) < 2e-5
    assert utm_to_latlon(500000.0, 0.0, 33) == pytest.approx((0.0, 15.0), abs=1e-9)


def test_splits_are_disjoint_in_space(city: Path) -> None:
    pts = {s: _utm(_names(city / "images" / s)) for s in ("train", "val", "test")}
    for a, b in [("train", "val"), ("train", "test"), ("val", "test")]:
        gap = np.linalg.norm(pts[a][:, None] - pts[b][None], axis=2).min()
        assert gap > 25.0 + 50.0, (a, b, gap)


def test_every_test_query_has_a_positive_and_all_conditions(city: Path) -> None:
    for split in ("val", "test"):
        db = _utm(_names(city / "images" / split / "database"))
        queries = _names(city / "images" / split / "queries")
        dist = np.linalg.norm(_utm(queries)[:, None] - db[None], axis=2)
        assert (dist.min(axis=1) <= 25.0).all()
        assert {q.name.split("@")[14] for q in queries} == set(CONDITIONS)


def test_pairs_share_names(city: Path) -> None:
    day = [p.name for p in _names(city / "images/train/pairs/day")]
    night = [p.name for p in _names(city / "images/train/pairs/night")]
    assert day == night and len(day) == SIZES["tiny"].pairs


def test_same_seed_reuses_and_regenerates_identically(city: Path, tmp_path: Path) -> None:
    before = (city / "manifest.json").stat().st_mtime_ns
    assert prepare(city.parent, "tiny", seed=0, progress=False) == city  # reused
    assert (city / "manifest.json").stat().st_mtime_ns == before
    again = prepare(tmp_path, "tiny", seed=0, progress=False)
    assert read_manifest(again) == read_manifest(city)
    a, b = _names(city / "images"), _names(again / "images")
    assert [p.relative_to(city) for p in a] == [p.relative_to(again) for p in b]
    assert a[0].read_bytes() == b[0].read_bytes()


def test_different_seed_differs(city: Path, tmp_path: Path) -> None:
    other = prepare(tmp_path, "tiny", seed=1, progress=False)
    m0, m1 = read_manifest(city), read_manifest(other)
    assert m0 is not None and m1 is not None
    assert m0["sha256"] != m1["sha256"]
    assert m0["files"] == m1["files"]  # same plan sizes, different content


def test_unknown_size_names_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"'huge'.*small.*tiny|'huge'.*tiny"):
        prepare(tmp_path, "huge")


def test_interrupted_generation_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import vpr_bench.data.synthcity.writer as writer

    calls = {"n": 0}
    real = writer._write_file

    def failing(path: Path, data: bytes) -> None:
        calls["n"] += 1
        if calls["n"] == 50:
            raise RuntimeError("simulated crash")
        real(path, data)

    monkeypatch.setattr(writer, "_write_file", failing)
    with pytest.raises(RuntimeError, match="simulated crash"):
        prepare(tmp_path, "tiny", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_foreign_folder_is_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "synthcity-tiny").mkdir()
    (tmp_path / "synthcity-tiny" / "mine.txt").write_text("keep")
    with pytest.raises(DataError, match="no synthcity manifest"):
        prepare(tmp_path, "tiny", progress=False)
    assert (tmp_path / "synthcity-tiny" / "mine.txt").read_text() == "keep"


def test_spec_imports_without_numpy_or_torch() -> None:
    import subprocess

    code = (
        "import sys; from vpr_bench.data.synthcity.spec import SYNTHCITY as S; "
        "assert 'torch' not in sys.modules and 'numpy' not in sys.modules, sorted(sys.modules); "
        "print(S.name, S.default_split, sorted(S.provides), [p.name for p in S.protocols])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == [
        "synthcity",
        "test",
        "['conditions',",
        "'domain-pairs',",
        "'generated',",
        "'train']",
        "['synthcity-test',",
        "'synthcity-val']",
    ]


def test_load_split_and_pairs_through_vg_reader(city: Path) -> None:
    from vpr_bench.data.synthcity.spec import SYNTHCITY, load_pairs, load_split

    split = load_split(city, "test")
    manifest = json.loads((city / "manifest.json").read_text())
    assert len(split.database) == manifest["counts"]["test"]["database"]["day"]
    assert len(split.queries) == sum(manifest["counts"]["test"]["queries"].values())
    assert split.protocol is None  # a reader reads; data.load_split attaches the protocol
    from vpr_bench.data import SplitTarget
    from vpr_bench.data import load_split as load_with_protocol

    target = SplitTarget(SYNTHCITY, "test", city, SYNTHCITY.protocol_for("test"))
    loaded = load_with_protocol(target)
    assert loaded.protocol is SYNTHCITY.protocol_for("test") and loaded.queries == split.queries
    assert loaded.protocol is not None and loaded.protocol.radius_m == 25.0
    assert {q.condition for q in split.queries} == set(CONDITIONS)
    assert all(q.domain == q.condition for q in split.queries)
    assert all(not math.isnan(r.easting) for r in split.database)
    pairs = load_pairs(city)
    assert len(pairs) == SIZES["tiny"].pairs
    assert all(a.path.name == b.path.name for a, b in pairs)
    assert {(a.condition, b.domain) for a, b in pairs} == {("day", "night")}
    with pytest.raises(UsageError, match="no split 'dev'"):
        load_split(city, "dev")
