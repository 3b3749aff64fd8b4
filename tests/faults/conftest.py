"""Fixtures of the fault catalogue: small folders built from the real shared fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest


def files_under(root: Path) -> set[str]:
    """Every file below ``root``, relative, so a test can assert nothing was left behind."""
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def corridor_copy(shared_data: Path, tmp_path: Path) -> Path:
    """A VPR-Bench corridor folder whose images link to the real ones; its GT is a copy."""
    real = shared_data / "vpr_bench" / "datasets" / "corridor"
    root = tmp_path / "corridor"
    for folder in ("ref", "query"):
        (root / folder).mkdir(parents=True)
        for image in (real / folder).iterdir():
            (root / folder / image.name).symlink_to(image)
    (root / "ground_truth_new.npy").write_bytes((real / "ground_truth_new.npy").read_bytes())
    return root


@pytest.fixture(scope="session")
def tiny_city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny synthetic city (seed 0), rendered once per session; treat it as read-only."""
    from vpr_bench.data.synthcity import prepare

    return Path(prepare(tmp_path_factory.mktemp("data"), "tiny", seed=0, progress=False))
