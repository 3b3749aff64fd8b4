"""The NetVLAD dbStruct reader on the real .mat files (counts and ground truth) and on bad input."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from scipy.io import loadmat

from tests.data.loading import load_builtin
from vpr_bench.data.formats.datasets_vg import parse_vg_name
from vpr_bench.data.formats.netvlad_mat import (
    parse_dbstruct,
    read_dbstruct,
)
from vpr_bench.data.geo import positives_within, split_positives, training_radii, utm_array
from vpr_bench.data.split import GeoSplit
from vpr_bench.errors import DataError

# (loader, split) -> (db, queries, 25 m positives min/median/max, queries without a 10 m positive)
# Counts: shared/data/README.md; positive statistics: docs/datasets.md section 1.2.
PITTS = {
    ("pitts30k", "train"): (10000, 7416, (24, 120, 360), 96),
    ("pitts30k", "val"): (10000, 7608, (24, 120, 360), 360),
    ("pitts30k", "test"): (10000, 6816, (24, 120, 360), 384),
    ("pitts250k", "train"): (91464, 7824, (72, 120, 360), 24),
    ("pitts250k", "val"): (78648, 7608, (24, 120, 360), 360),
    ("pitts250k", "test"): (83952, 8280, (48, 144, 432), 96),
}


@pytest.fixture(scope="module")
def splits(mat_root: Path) -> dict[tuple[str, str], GeoSplit]:
    """Every real .mat loaded once for the module."""
    loaded = {key: load_builtin(key[0], mat_root, key[1]) for key in PITTS}
    loaded[("tokyo247", "test")] = load_builtin("tokyo247", mat_root, "test")
    loaded[("tokyotm", "train")] = load_builtin("tokyotm", mat_root, "train")
    loaded[("tokyotm", "val")] = load_builtin("tokyotm", mat_root, "val")
    return loaded


@pytest.mark.parametrize("key", list(PITTS))
def test_pitts_counts_and_ground_truth(
    splits: dict[tuple[str, str], GeoSplit], key: tuple[str, str]
) -> None:
    n_db, n_q, (lo, median, hi), without_10m = PITTS[key]
    split = splits[key]
    assert (len(split.database), len(split.queries)) == (n_db, n_q)
    assert split.extras["which_set"] == key[1]
    assert split.extras["pos_dist_thr"] == 25.0
    assert split.extras["pos_dist_sq_thr"] == 625.0
    assert split.extras["nontriv_pos_dist_sq_thr"] == 100.0
    positives_10, positives_25 = training_radii(utm_array(split.database), utm_array(split.queries))
    counts = np.array([len(p) for p in positives_25])
    assert (counts.min(), int(np.median(counts)), counts.max()) == (lo, median, hi)
    assert sum(len(p) == 0 for p in positives_10) == without_10m
    if split.protocol is not None:
        final = split_positives(split)
        assert all(len(p) > 0 for p in final)  # every query has a positive within 25 m
        assert all(np.array_equal(a, b) for a, b in zip(final, positives_25, strict=True))
    else:
        assert key[1] == "train"


def test_pitts_paths_protocol_and_places(
    splits: dict[tuple[str, str], GeoSplit], mat_root: Path
) -> None:
    split = splits[("pitts30k", "test")]
    assert split.protocol is not None and split.protocol.name == "pitts30k-test"
    assert split.database[0].path == mat_root / "000" / "000829_pitch1_yaw1.jpg"
    assert split.queries[0].path == mat_root / "queries_real" / "000" / "000546_pitch1_yaw1.jpg"
    assert split.database[0].place_id == "000/000829"
    db_rel = {r.path.relative_to(mat_root).as_posix() for r in split.database}
    q_rel = {r.path.relative_to(mat_root / "queries_real").as_posix() for r in split.queries}
    assert len(db_rel & q_rel) == 288  # identical relative names, distinct files
    assert len({r.path for r in split.database} & {r.path for r in split.queries}) == 0
    assert len(split.manifest) == 64
    assert splits[("pitts250k", "val")].protocol.name == "pitts250k-val"  # type: ignore[union-attr]


def test_ground_truth_sample_matches_brute_force(splits: dict[tuple[str, str], GeoSplit]) -> None:
    split = splits[("pitts30k", "test")]
    db, q = utm_array(split.database), utm_array(split.queries)
    sample = np.random.default_rng(0).choice(len(q), size=60, replace=False)
    found = positives_within(db, q[sample], 25.0)
    dist = np.sqrt(((q[sample, None, :] - db[None, :, :]) ** 2).sum(-1))
    for row, hits in zip(dist, found, strict=True):
        assert np.array_equal(hits, np.flatnonzero(row <= 25.0))
        assert hits.dtype == np.int64


def test_tokyo247_real_file(splits: dict[tuple[str, str], GeoSplit], mat_root: Path) -> None:
    split = splits[("tokyo247", "test")]
    assert (len(split.database), len(split.queries)) == (75984, 315)
    first = split.database[0]
    assert (
        first.path == mat_root / "03814/381418.231_3946450.428/JHVdmPpMNQcjBfR7qsWEtA_012_000.png"
    )
    assert first.place_id == "03814/381418.231_3946450.428"
    assert len({r.place_id for r in split.database}) == 6254  # location folders (datasets.md 2.3)
    assert split.queries[0].path == mat_root / "247query_subset_v2" / "00010.jpg"
    assert split.protocol is not None and split.protocol.place_nms
    positives = split_positives(split)
    assert min(len(p) for p in positives) > 0


def test_tokyotm_real_files(splits: dict[tuple[str, str], GeoSplit]) -> None:
    for split_name, n_db, n_q in (("train", 49104, 7277), ("val", 49056, 7186)):
        split = splits[("tokyotm", split_name)]
        assert (len(split.database), len(split.queries)) == (n_db, n_q)
        db_paths = {r.path for r in split.database}
        assert all(q.path in db_paths for q in split.queries)  # queries come from the database
        assert split.queries[0].timestamp is not None and len(split.queries[0].timestamp) == 6
    val = splits[("tokyotm", "val")]
    assert val.protocol is not None and val.protocol.drop_same_timestamp
    positives = split_positives(val)
    index_of = {r.path: i for i, r in enumerate(val.database)}
    for q, pos in list(zip(val.queries, positives, strict=True))[:300]:
        assert index_of[q.path] not in pos  # never the query itself
        assert all(val.database[i].timestamp != q.timestamp for i in pos)
    assert splits[("tokyotm", "train")].protocol is None


def test_both_loadmat_access_styles_agree(shared_data: Path) -> None:
    path = shared_data / "netvlad_datasets_mat" / "tokyoTM_val.mat"
    plain = parse_dbstruct(loadmat(str(path))["dbStruct"], path)
    squeezed = parse_dbstruct(
        loadmat(str(path), squeeze_me=True, struct_as_record=False)["dbStruct"], path
    )
    assert plain.db_names == squeezed.db_names and plain.q_names == squeezed.q_names
    assert np.array_equal(plain.utm_db, squeezed.utm_db)
    assert plain.db_timestamps == squeezed.db_timestamps
    assert (plain.num_images, plain.pos_dist_thr**2) == (squeezed.num_images, 625.0)


def test_real_tokyo_vg_query_names_match_utm_q(shared_data: Path) -> None:
    db = read_dbstruct(shared_data / "netvlad_datasets_mat" / "tokyo247.mat")
    files = sorted((shared_data / "cosplace_tokyo247_queries_vg").rglob("*.jpg"))
    assert len(files) == 5
    for file in files:
        name = parse_vg_name(file.name)
        assert (name.utm_zone, name.utm_letter) == (54, "S")
        row = db.q_names.index(name.pano_id)  # the pano_id field is the original '00399.jpg'
        assert abs(db.utm_q[row, 0] - name.utm_east) <= 0.01
        assert abs(db.utm_q[row, 1] - name.utm_north) <= 0.01


def test_tokyo247_resolves_the_existing_suffix(
    tmp_path: Path, jpeg_writer: Callable[..., Path], dbstruct_writer: Callable[..., Path]
) -> None:
    names = ["03814/381418.231_3946450.428/JHVdmPpMNQcjBfR7qsWEtA_012_000.jpg"]
    dbstruct_writer(
        tmp_path / "tokyo247.mat", "test", names, np.zeros((1, 2)), ["00010.jpg"], np.zeros((1, 2))
    )
    split = load_builtin("tokyo247", tmp_path, "test")
    assert split.database[0].path.suffix == ".png"  # nothing on disk: the release's .png
    jpeg_writer(tmp_path / names[0])
    vg = load_builtin("tokyo247", tmp_path, "vg")
    assert vg.database[0].path.suffix == ".jpg"
    assert vg.protocol is not None and vg.protocol.name == "tokyo247-vg"
    assert vg.protocol.query_resize.shorter == 480 and not vg.protocol.place_nms


# --- bad input ---------------------------------------------------------------------------------


def test_missing_root_and_missing_mat(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"pitts30k root .*does not exist"):
        load_builtin("pitts30k", tmp_path / "nope", "test")
    with pytest.raises(
        DataError, match=r"Missing pitts30k_test\.mat: looked for .*datasets/pitts30k_test\.mat"
    ):
        load_builtin("pitts30k", tmp_path, "test")


def test_truncated_mat(tmp_path: Path, shared_data: Path) -> None:
    data = (shared_data / "netvlad_datasets_mat" / "pitts30k_test.mat").read_bytes()
    (tmp_path / "pitts30k_test.mat").write_bytes(data[: len(data) // 3])
    with pytest.raises(
        DataError, match=r"pitts30k_test\.mat.*truncated or not a NetVLAD spec file"
    ):
        load_builtin("pitts30k", tmp_path, "test")


def test_mat_of_another_dataset(tmp_path: Path, shared_data: Path) -> None:
    mats = shared_data / "netvlad_datasets_mat"
    shutil.copy(mats / "tokyoTM_val.mat", tmp_path / "pitts30k_val.mat")
    with pytest.raises(DataError, match=r"TokyoTM \(12 fields\) dbStruct, which is not a pitts30k"):
        load_builtin("pitts30k", tmp_path, "val")
    shutil.copy(mats / "tokyo247.mat", tmp_path / "pitts30k_test.mat")
    with pytest.raises(DataError, match=r"does not look like pitts30k"):
        load_builtin("pitts30k", tmp_path, "test")
    shutil.copy(mats / "pitts30k_val.mat", tmp_path / "pitts30k_train.mat")
    with pytest.raises(DataError, match=r"whichSet is 'val' but split 'train'"):
        load_builtin("pitts30k", tmp_path, "train")


def test_inconsistent_counts_and_foreign_mat(
    tmp_path: Path, dbstruct_writer: Callable[..., Path]
) -> None:
    names = ["000/000001_pitch1_yaw1.jpg", "000/000001_pitch1_yaw2.jpg"]
    dbstruct_writer(
        tmp_path / "pitts30k_test.mat",
        "test",
        names,
        np.zeros((2, 2)),
        names[:1],
        np.zeros((1, 2)),
        num_images=3,
    )
    with pytest.raises(DataError, match=r"numImages=3 but 2 dbImageFns"):
        load_builtin("pitts30k", tmp_path, "test")
    from scipy.io import savemat

    savemat(str(tmp_path / "pitts30k_val.mat"), {"other": np.zeros(3)})
    with pytest.raises(DataError, match=r"holds no variable 'dbStruct' \(it has \['other'\]\)"):
        load_builtin("pitts30k", tmp_path, "val")


def test_synthetic_fixture_round_trip(tmp_path: Path, dbstruct_writer: Callable[..., Path]) -> None:
    db = [f"000/000001_pitch1_yaw{i}.jpg" for i in range(1, 4)]
    q = ["000/000001_pitch1_yaw1.jpg"]
    utm_db = np.array([[584000.0, 4477000.0], [584020.0, 4477000.0], [584026.0, 4477000.0]])
    dbstruct_writer(tmp_path / "datasets" / "pitts250k_test.mat", "test", db, utm_db, q, utm_db[:1])
    split = load_builtin("pitts250k", tmp_path, "test")
    assert [r.path.name for r in split.database] == [Path(n).name for n in db]
    assert [p.tolist() for p in split_positives(split)] == [[0, 1]]  # 26 m is out


@pytest.mark.parametrize("via_raw", [True, False])
def test_pitts_in_the_openibl_layout(tmp_path: Path, shared_data: Path, via_raw: bool) -> None:
    """OpenIBL/ClusVPR keep raw/pitts30k_test.mat and raw/Pittsburgh/{images,queries}/."""
    raw = tmp_path / "raw"
    (raw / "Pittsburgh" / "images").mkdir(parents=True)
    (raw / "Pittsburgh" / "queries").mkdir()
    (raw / "pitts30k_test.mat").symlink_to(
        shared_data / "netvlad_datasets_mat" / "pitts30k_test.mat"
    )
    split = load_builtin("pitts30k", raw if not via_raw else tmp_path, "test")
    assert (len(split.database), len(split.queries)) == (10000, 6816)
    assert (
        split.database[0].path == raw / "Pittsburgh" / "images" / "000" / "000829_pitch1_yaw1.jpg"
    )
    assert (
        split.queries[0].path == raw / "Pittsburgh" / "queries" / "000" / "000546_pitch1_yaw1.jpg"
    )
    with pytest.raises(DataError, match=r"OpenIBL layout .* keeps it at .*raw/pitts30k_val\.mat"):
        load_builtin("pitts30k", tmp_path, "val")


def test_tokyo247_conditions_come_from_a_user_list(shared_data: Path, tmp_path: Path) -> None:
    # The real .mat and a user's list: the five queries CosPlace kept as night targets
    # (datasets.md 2.2) labelled night, every other query day.
    (tmp_path / "datasets").symlink_to(shared_data / "netvlad_datasets_mat")
    night = {
        parse_vg_name(f.name).pano_id
        for f in (shared_data / "cosplace_tokyo247_queries_vg").rglob("*.jpg")
    }
    assert night == {"00171.jpg", "00399.jpg", "00405.jpg", "00417.jpg", "00432.jpg"}
    unlabelled = load_builtin("tokyo247", tmp_path, "test")
    assert {q.condition for q in unlabelled.queries} == {None}  # no list: no guessed labels
    assert unlabelled.extras["conditions_file"] == ""

    names = [q.path.name for q in unlabelled.queries]
    lines = [f"{n},{'night' if n in night else 'day'}" for n in names]
    listed = tmp_path / "tokyo247_conditions.csv"
    listed.write_text("name,condition\n" + "\n".join(lines) + "\n", encoding="utf-8")
    split = load_builtin("tokyo247", tmp_path, "vg")
    labels = {q.path.name: q.condition for q in split.queries}
    assert sorted(n for n, c in labels.items() if c == "night") == sorted(night)
    assert sum(c == "day" for c in labels.values()) == 310
    assert split.extras["conditions_file"] == str(listed)

    listed.write_text("name,condition\n" + "\n".join(lines[:-1]) + "\n", encoding="utf-8")
    with pytest.raises(
        DataError, match=r"tokyo247_conditions.csv gives a condition for 314 of 315"
    ):
        load_builtin("tokyo247", tmp_path, "test")
