"""MSLS CSV reader on a fixture built from the REAL val names (gsv-cities and Patch-NetVLAD lists).

No real raw.csv/postprocessed.csv exist, so the positions are constructed: every scored query sits
5 m from its first real positive (msls_val_pIdx), the 7 real unscored queries sit 500 m from any
database image, and panorama rows (which must be dropped) sit on top of the unscored queries.
The 740-query selection must then equal the real msls_val_qIdx.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from tests.data.loading import load_builtin
from vpr_bench.data.geo import split_positives
from vpr_bench.errors import DataError

ORIGIN = {"cph": (720000.0, 6170000.0), "sf": (550000.0, 4180000.0)}
RAW_HEADER = ["", "key", "lon", "lat", "ca", "captured_at", "pano"]
POST_HEADER = [
    "",
    "key",
    "easting",
    "northing",
    "unique_cluster",
    "control_panel",
    "night",
    "view_direction",
]


def _keys(lines: list[str]) -> list[str]:
    return [Path(line.strip()).stem for line in lines if line.strip()]


def _write_side(side_dir: Path, rows: list[tuple[str, float, float, bool, bool]]) -> None:
    side_dir.mkdir(parents=True, exist_ok=True)
    with (
        (side_dir / "raw.csv").open("w", newline="") as raw,
        (side_dir / "postprocessed.csv").open("w", newline="") as post,
    ):
        raw_w, post_w = csv.writer(raw), csv.writer(post)
        raw_w.writerow(RAW_HEADER)
        post_w.writerow(POST_HEADER)
        for i, (key, east, north, pano, night) in enumerate(rows):
            raw_w.writerow([i, key, 12.5, 55.6, 90.0, "2018-05-27", pano])
            post_w.writerow([i, key, east, north, 0, 0, night, "Forward"])


@pytest.fixture(scope="module")
def msls_root(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    meta = shared_data / "gsv_cities_eval_metadata" / "datasets" / "msls_val"
    names = shared_data / "patch_netvlad" / "patchnetvlad" / "dataset_imagenames"
    q_images = np.load(meta / "msls_val_qImages.npy")
    q_idx = np.load(meta / "msls_val_qIdx.npy")
    p_idx = np.load(meta / "msls_val_pIdx.npy", allow_pickle=True)  # object array of int64 arrays
    db_keys = {
        c: _keys((names / f"mapillary{c}_imageNames_index.txt").read_text().splitlines())
        for c in ORIGIN
    }
    db_city = ["cph"] * len(db_keys["cph"]) + ["sf"] * len(db_keys["sf"])
    db_local = list(range(len(db_keys["cph"]))) + list(range(len(db_keys["sf"])))
    first_positive = {int(q): int(p[0]) for q, p in zip(q_idx, p_idx, strict=True)}
    root = tmp_path_factory.mktemp("msls")
    for city, (e0, n0) in ORIGIN.items():
        db_rows = [(k, e0 + 1000.0 * i, n0, False, False) for i, k in enumerate(db_keys[city])]
        q_rows = []
        for qi, path in enumerate(q_images):
            if f"/{city}/" not in str(path):
                continue
            key = Path(str(path)).stem
            if qi in first_positive:
                j = first_positive[qi]
                assert db_city[j] == city
                q_rows.append((key, e0 + 1000.0 * db_local[j] + 3.0, n0 + 4.0, False, qi % 5 == 0))
            else:
                q_rows.append((key, e0 + 1000.0 * qi + 500.0, n0 + 500.0, False, False))
                db_rows.append((f"pano{qi}", e0 + 1000.0 * qi + 500.0, n0 + 500.0, True, False))
        q_rows.insert(1, (f"panoq_{city}", e0, n0, True, False))
        _write_side(root / "train_val" / city / "database", db_rows)
        _write_side(root / "train_val" / city / "query", q_rows)
    return root


def test_msls_val_selection_matches_real_qidx(msls_root: Path, shared_data: Path) -> None:
    meta = shared_data / "gsv_cities_eval_metadata" / "datasets" / "msls_val"
    split = load_builtin("msls", msls_root, "val")
    assert (len(split.database), len(split.queries)) == (18871, 747)  # panoramas dropped
    rel = [q.path.relative_to(msls_root).as_posix() for q in split.queries]
    assert rel == [str(p) for p in np.load(meta / "msls_val_qImages.npy")]
    positives = split_positives(split)
    scored = np.flatnonzero([len(p) > 0 for p in positives])
    assert np.array_equal(scored, np.load(meta / "msls_val_qIdx.npy"))
    p_idx = np.load(meta / "msls_val_pIdx.npy", allow_pickle=True)
    assert all(int(p[0]) in positives[q].tolist() for q, p in zip(scored, p_idx, strict=True))
    assert split.protocol is not None and split.protocol.name == "msls-val"
    assert (
        split.protocol.no_positive == "exclude" and split.extras["retrieval_within_groups"] is True
    )
    assert split.queries[0].condition == "night" and split.queries[1].condition == "day"
    assert split.queries[0].timestamp == "20180527"


def test_msls_val_merged(msls_root: Path) -> None:
    merged = load_builtin("msls", msls_root, "val-merged")
    assert merged.protocol is not None and merged.protocol.name == "msls-val-merged"
    assert merged.extras["retrieval_within_groups"] is False
    assert sum(len(p) > 0 for p in split_positives(merged)) == 740


def test_msls_bad_input(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"train_val does not exist"):
        load_builtin("msls", tmp_path, "val")
    side = tmp_path / "train_val" / "cph" / "database"
    (tmp_path / "train_val" / "sf").mkdir(parents=True)
    _write_side(side, [("k1", 1.0, 2.0, False, False)])
    with pytest.raises(DataError, match=r"Missing .*cph/query/raw\.csv"):
        load_builtin("msls", tmp_path, "val")
    (side / "postprocessed.csv").write_text(",key,northing\n0,k1,2\n")
    with pytest.raises(DataError, match=r"postprocessed\.csv lacks the column\(s\) easting"):
        load_builtin("msls", tmp_path, "val")
    (side / "postprocessed.csv").write_text(",key,easting,northing\n0,k2,1,2\n")
    with pytest.raises(DataError, match="do not list the same keys"):
        load_builtin("msls", tmp_path, "val")
    with pytest.raises(DataError, match="No MSLS training city"):
        load_builtin("msls", tmp_path, "train")
