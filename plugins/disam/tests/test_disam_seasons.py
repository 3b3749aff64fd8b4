"""CMU-Seasons / RobotCar-Seasons readers and submissions, on the 17 real DIFL-FCL pose files.

The pose files are the real ones (../shared/data/cmu_seasons_difl_fcl); the image files are
empty files named as the real ones: database images exactly as the pose file lists them, query
images in CMU's ``img_<index>_c<camera>_<microseconds>us_rect.jpg`` form.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import torch

from vpr_bench.errors import DataError
from vpr_bench_disam.metrics import retrieval_distances
from vpr_bench_disam.seasons import load_cmu, load_robotcar, read_pose_file, retrieval_groups
from vpr_bench_disam.submit import grouped_top_n, rerank, submission_lines, write_submission


@pytest.fixture(scope="module")
def pose_files(oracles_dir: Path) -> list[Path]:
    root = oracles_dir.parent / "data" / "cmu_seasons_difl_fcl" / "datasets"
    files = sorted(root.glob("CMU_*/s*/pose_new_s*.txt"))
    assert len(files) == 17, files
    return files


def _touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")


def _make_root(tmp: Path, pose_files: list[Path], per_camera: int = 1) -> Path:
    """DISAM's layout with every real pose file and images named as the real ones."""
    for pose in pose_files:
        area, slice_name = pose.parts[-3], pose.parts[-2]
        folder = tmp / area / slice_name
        folder.mkdir(parents=True)
        shutil.copy(pose, folder / pose.name)
        cameras = set()
        for line in pose.read_text().splitlines():
            name = line.split()[0].rsplit("/", 1)[-1]
            cameras.add(name[11])
            _touch(folder / "test00" / name)
        for k in range(1, 12):
            _touch(folder / f"test{k:02d}" / ".keep")
            for camera in sorted(cameras):
                for i in range(per_camera):
                    stamp = 1283347879534213 + 1000 * k + i
                    _touch(
                        folder
                        / f"test{k:02d}"
                        / f"img_{k * 100 + i:05d}_c{camera}_{stamp}us_rect.jpg"
                    )
    return tmp


@pytest.fixture(scope="module")
def cmu_root(tmp_path_factory: pytest.TempPathFactory, pose_files: list[Path]) -> Path:
    return _make_root(tmp_path_factory.mktemp("cmu"), pose_files)


def test_pose_files_parse(pose_files: list[Path]) -> None:
    counts = {}
    for path in pose_files:
        table = read_pose_file(path)
        counts[path.parent.name] = len(table.poses)
        assert all(n.startswith("database/img_") for n in table.names)
        assert all(len(p) == 7 for p in table.poses.values())
    assert min(counts.values()) == 197 and max(counts.values()) == 544


@pytest.mark.parametrize(("area", "slices"), [("urban", 7), ("suburban", 3), ("park", 7)])
def test_area_split_reads_every_slice(
    cmu_root: Path, pose_files: list[Path], area: str, slices: int
) -> None:
    split = load_cmu(cmu_root, area)
    files = [p for p in pose_files if p.parts[-3] == f"CMU_{area}"]
    assert len(files) == slices
    lines = sum(len(read_pose_file(p).poses) for p in files)
    assert len(split.database) == lines
    assert {r.domain for r in split.database} == {"0"}
    assert {r.domain for r in split.queries} == {str(k) for k in range(1, 12)}
    db_groups, q_groups = retrieval_groups(split)
    assert len(db_groups) == len(split.database) and len(q_groups) == len(split.queries)
    assert set(q_groups) <= set(db_groups)
    for record, group in zip(split.database, db_groups, strict=True):
        assert group.endswith(f"/c{record.path.name[11]}")
        assert record.path.parent.parent.name == group.split("/")[0]


def test_submission_lines_copy_the_retrieved_pose(
    cmu_root: Path, pose_files: list[Path], tmp_path: Path
) -> None:
    split = load_cmu(cmu_root, "urban")
    generator = torch.Generator().manual_seed(0)
    db = torch.nn.functional.normalize(
        torch.randn(len(split.database), 8, generator=generator), dim=1
    )
    q = torch.nn.functional.normalize(
        torch.randn(len(split.queries), 8, generator=generator), dim=1
    )
    db_groups, q_groups = retrieval_groups(split)
    picks = grouped_top_n(q, db, q_groups, db_groups)[:, 0]
    lines = submission_lines(split, picks.tolist())
    raw = {
        line.split()[0].rsplit("/", 1)[-1]: line.split()[1:]
        for p in pose_files
        for line in p.read_text().splitlines()
    }
    assert len(lines) == len(split.queries)
    for query, index, line, group in zip(
        split.queries, picks.tolist(), lines, q_groups, strict=True
    ):
        fields = line.split(" ")
        assert fields[0] == query.path.name
        assert fields[1:] == raw[split.database[index].path.name]  # verbatim text
        assert db_groups[index] == group
        # the pick is the first nearest within the group, as the reference's scan
        members = [i for i, g in enumerate(db_groups) if g == group]
        dist = -(db[members] @ q[split.queries.index(query)])
        assert members[int(torch.argmin(dist))] == index
    path = write_submission(tmp_path, "disam-coarse", split, lines)
    assert path.name == "CMU_eval_disam-coarse.txt"
    assert path.read_text().splitlines() == lines
    assert re.fullmatch(r"img_\d{5}_c[01]_\d+us_rect\.jpg( -?\d+(\.\d+)?(e-?\d+)?){7}", lines[0])


def test_grouped_retrieval_matches_the_reference_scan() -> None:
    """Mean-cos descriptors: grouped picks = per-group first argmin of -mcos on the codes."""
    from vpr_bench_disam.metrics import meancos_descriptor

    generator = torch.Generator().manual_seed(1)
    db_codes = torch.randn(9, 4, 3, 3, generator=generator, dtype=torch.float64)
    q_codes = torch.randn(5, 4, 3, 3, generator=generator, dtype=torch.float64)
    db_codes[4] = db_codes[1]  # a tie: the earlier one wins
    q_codes[0] = db_codes[1] * 2
    db_groups = ["a", "a", "b", "a", "a", "b", "b", "a", "b"]
    q_groups = ["a", "b", "a", "b", "a"]
    picks = grouped_top_n(
        meancos_descriptor(q_codes), meancos_descriptor(db_codes), q_groups, db_groups, 3
    )
    for qi, group in enumerate(q_groups):
        members = [i for i, g in enumerate(db_groups) if g == group]
        dist = retrieval_distances(q_codes[qi : qi + 1], db_codes[members], "mean-cos")[0]
        order = sorted(range(len(members)), key=lambda j: (float(dist[j]), j))[:3]
        assert picks[qi].tolist() == [members[j] for j in order]
    assert picks[0, 0] == 1 and picks[0, 1] == 4


def test_rerank_hand_case() -> None:
    candidates = torch.tensor([[2, 0, 1], [1, 2, 0]])
    fine_db = torch.eye(3)
    fine_q = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.6, 0.6]])
    # query 0: db 0 is nearest; query 1: db 1 and db 2 tie, the first-stage order (1) wins
    assert rerank(candidates, fine_q, fine_db).tolist() == [0, 1]


def test_database_image_without_pose_is_named(tmp_path: Path, pose_files: list[Path]) -> None:
    root = _make_root(tmp_path, [pose_files[0]])
    extra = next((root).glob("CMU_*/s*/test00")) / "img_99999_c0_1303398474779439us_rect.jpg"
    _touch(extra)
    with pytest.raises(
        DataError, match=r"img_99999_c0_1303398474779439us_rect.jpg has no line in .*pose_new_s"
    ):
        load_cmu(root, pose_files[0].parts[-3].removeprefix("CMU_"))


def test_camera_without_database_images(tmp_path: Path, pose_files: list[Path]) -> None:
    root = _make_root(tmp_path, [pose_files[0]])
    slice_dir = next(root.glob("CMU_*/s*"))
    for image in (slice_dir / "test00").glob("img_*_c1_*"):
        image.unlink()
    with pytest.raises(
        DataError, match=r"camera c1, but slice s\d+ has no database image of that camera"
    ):
        load_cmu(root, pose_files[0].parts[-3].removeprefix("CMU_"))


def test_missing_domain_folder_and_bad_pose_line(tmp_path: Path, pose_files: list[Path]) -> None:
    root = _make_root(tmp_path, [pose_files[0]])
    area = pose_files[0].parts[-3].removeprefix("CMU_")
    slice_dir = next(root.glob("CMU_*/s*"))
    pose = next(slice_dir.glob("pose_new_*.txt"))
    pose.write_text(pose.read_text() + "database/img_1.jpg 1 2 3\n")
    with pytest.raises(DataError, match=r"line \d+: expected 8 fields"):
        load_cmu(root, area)
    pose.unlink()
    with pytest.raises(DataError, match="Pose file .* is missing"):
        load_cmu(root, area)
    shutil.copy(pose_files[0], pose)
    shutil.rmtree(slice_dir / "test11")
    with pytest.raises(DataError, match="must hold the folders test00 … test11"):
        load_cmu(root, area)


def test_urban_train_split(tmp_path: Path) -> None:
    for k in range(12):
        _touch(tmp_path / "CMU_urban" / f"train{k:02d}" / "x" / f"img_{k:05d}_c0_1us_rect.jpg")
    split = load_cmu(tmp_path, "urban-train")
    assert [r.domain for r in split.database] == [str(k) for k in range(12)]
    assert split.queries == ()


def test_robotcar_submission(tmp_path: Path) -> None:
    root = tmp_path / "RobotCar_rear"
    stamps = [1417178853389469 + i for i in range(4)]
    (root).mkdir()
    (root / "pose_new_rear.txt").write_text(
        "".join(
            f"overcast-reference/rear/{s}.jpg 0.6552 0.1 -0.2 0.3 1.5 -2 {i}\n"
            for i, s in enumerate(stamps)
        )
    )
    for s in stamps:
        _touch(root / "test00" / f"{s}.jpg")
    for k in range(1, 10):
        _touch(root / f"test{k:02d}" / f"{1418000000000000 + k}.jpg")
    split = load_robotcar(root)
    picks = [k % 4 for k in range(len(split.queries))]
    lines = submission_lines(split, picks)
    assert lines[0] == f"rear/1418000000000001.jpg 0.6552 0.1 -0.2 0.3 1.5 -2 {picks[0]}"
    assert write_submission(tmp_path, "disam", split, lines).name == "RobotCar_eval_disam.txt"


def test_datasets_are_registered_and_load_through_the_harness(cmu_root: Path) -> None:
    from vpr_bench import get_registries

    registries = get_registries("disam")
    spec = registries.datasets.get("cmu-seasons")
    assert spec.splits == ("urban-train", "urban", "suburban", "park")
    from vpr_bench import resolve

    split = resolve(spec.load)(cmu_root, "park")
    assert split.name == "cmu-seasons-park"
    assert registries.datasets.get("robotcar-seasons").splits == ("test",)


def test_splits_ask_for_grouped_retrieval(cmu_root: Path) -> None:
    """The harness's grouped search reads these extras (``vpr_bench.eval.grouped``)."""
    split = load_cmu(cmu_root, "suburban")
    assert split.extras["retrieval_within_groups"] is True
    assert len(split.extras["db_groups"]) == len(split.database)
    assert len(split.extras["query_groups"]) == len(split.queries)


def test_export_submission_evaluator(cmu_root: Path, tmp_path: Path) -> None:
    import numpy as np

    from vpr_bench import RetrievalResult, get_registries
    from vpr_bench_disam.submit import export_submission

    split = load_cmu(cmu_root, "park")
    db_groups, q_groups = retrieval_groups(split)
    first = [db_groups.index(g) for g in q_groups]  # each group's first database image
    knn = np.asarray(first, dtype=np.int64)[:, None]
    result = RetrievalResult(
        knn_idx=knn,
        knn_dist=np.zeros(knn.shape, dtype=np.float32),
        positives=tuple(np.zeros(0, dtype=np.int64) for _ in split.queries),
        n_database=len(split.database),
    )
    path = export_submission(result, split, tmp_path / "exports", "disam-fine")
    assert path is not None and path.name == "CMU_eval_disam-fine.txt"
    assert path.read_text().splitlines() == submission_lines(split, first)
    other = dataclasses_replace_extras(split)
    assert export_submission(result, other, tmp_path / "x", "m") is None
    evaluator = get_registries("disam").evaluators.get("disam-submission")
    assert evaluator.export == "vpr_bench_disam.submit:export_submission"
    protocols = get_registries("disam").datasets.get("cmu-seasons").protocols
    assert [p.name for p in protocols] == [
        "disam-cmu-urban",
        "disam-cmu-suburban",
        "disam-cmu-park",
    ]
    assert all(p.ground_truth == "none" for p in protocols)
    # DISAM's test transform: Pillow bicubic to exactly 256 x 256 (methods.md A.3).
    robotcar = get_registries("disam").datasets.get("robotcar-seasons").protocols
    for protocol in (*protocols, *robotcar):
        assert protocol.version == 2, protocol.name
        for policy in (protocol.db_resize, protocol.query_resize):
            assert (policy.kind, policy.height, policy.width) == ("hard", 256, 256)
            assert policy.interpolation == "bicubic"


def dataclasses_replace_extras(split):
    import dataclasses

    return dataclasses.replace(split, extras={})


def test_cmu_encoders_on_robotcar_need_a_domain_map(tmp_path: Path) -> None:
    from vpr_bench.errors import ConfigError
    from vpr_bench_disam.config import DisamConfig
    from vpr_bench_disam.model import build_disam
    from vpr_bench_disam.plugin import ROBOTCAR_CHECKPOINTS
    from vpr_bench_disam.seasons import ROBOTCAR_LABELS

    root = tmp_path / "RobotCar_rear"
    root.mkdir()
    (root / "pose_new_rear.txt").write_text("overcast-reference/rear/1.jpg 1 0 0 0 0 0 0\n")
    _touch(root / "test00" / "1.jpg")
    for k in range(1, 10):
        _touch(root / f"test{k:02d}" / f"{k + 1}.jpg")
    split = load_robotcar(root)
    assert [r.domain for r in split.queries] == list(ROBOTCAR_LABELS[1:])
    cmu = build_disam(DisamConfig(n_domains=12, ngf=2, netg_blocks=2, image_size=16))
    with pytest.raises(ConfigError, match="'robotcar-03' is not one of this DISAM model's 12"):
        cmu.domain_index(split.queries[2].domain)
    overrides = ROBOTCAR_CHECKPOINTS[0].overrides
    mapped = build_disam(
        DisamConfig(
            n_domains=10, domains=overrides["model.domains"], ngf=2, netg_blocks=2, image_size=16
        )
    )
    assert mapped.domain_index(split.queries[2].domain) == 3
