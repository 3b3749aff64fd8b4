"""End to end through the CLI: ``vpr-bench run`` of a DISAM model on a CMU-Seasons slice in
DISAM's layout (a real pose file, images named as the real ones) writes one submission line per
query, each the pose of a database image of the query's own camera."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vpr_bench.cli import main
from vpr_bench_disam.config import DisamConfig
from vpr_bench_disam.model import build_disam
from vpr_bench_disam.seasons import read_pose_file


@pytest.fixture(scope="module")
def cmu_slice(oracles_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """CMU_suburban/s9 (the real pose file) with small random JPEGs named as the real ones."""
    pose = oracles_dir.parent / "data" / "cmu_seasons_difl_fcl" / "datasets" / "CMU_suburban"
    pose = pose / "s9" / "pose_new_s9.txt"
    root = tmp_path_factory.mktemp("cmu-cli")
    folder = root / "CMU_suburban" / "s9"
    folder.mkdir(parents=True)
    shutil.copy(pose, folder / pose.name)
    rng = np.random.default_rng(0)

    def image(path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(path)

    for name in read_pose_file(folder / pose.name).names:
        image(folder / "test00" / name.rsplit("/", 1)[-1])
    for k in range(1, 12):
        for camera in "01":
            stamp = 1283347879534213 + k
            image(folder / f"test{k:02d}" / f"img_{k:05d}_c{camera}_{stamp}us_rect.jpg")
    return root


def test_run_writes_the_submission(cmu_slice: Path, tmp_path: Path) -> None:
    # the quick profile's model with CMU's 12 domains (labels 0..11 = folder indices)
    model = build_disam(DisamConfig(n_domains=12, ngf=16, image_size=64, seed=4))
    weights = tmp_path / "tiny.pt"
    torch.save(model.state_dict(), weights)
    boards = tmp_path / "boards"
    code = main(
        [
            "--plugins",
            "disam",
            "run",
            "--methods",
            "disam-coarse",
            "--profile",
            "quick",
            "--set",
            "model.n_domains=12",
            "--set",
            "model.domains=",
            "--weights",
            str(weights),
            "--trained-on",
            "cmu-seasons-urban-train",
            "--dataset",
            "cmu-seasons-suburban",
            "--data-root",
            str(cmu_slice),
            "--leaderboards",
            str(boards),
            "--runs-dir",
            str(tmp_path / "runs"),
            "--no-baseline",
            "--no-cache",
            "--device",
            "cpu",
        ]
    )
    assert code == 0
    (submission,) = (tmp_path / "runs").rglob("CMU_eval_disam-coarse.txt")
    lines = submission.read_text().splitlines()
    poses = read_pose_file(cmu_slice / "CMU_suburban" / "s9" / "pose_new_s9.txt")
    by_pose: dict[str, list[str]] = {}
    for name, pose in poses.poses.items():
        by_pose.setdefault(" ".join(pose), []).append(name)
    assert len(lines) == 22  # 11 conditions x 2 cameras
    for line in lines:
        query, pose = line.split(" ", 1)
        assert query.startswith("img_") and query.endswith("us_rect.jpg")
        assert any(name[11] == query[11] for name in by_pose[pose])  # same camera
