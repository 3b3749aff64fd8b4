"""Fixtures of this plugin's tests: the oracles in ../shared beside the checkout."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
SHARED = Path(os.environ.get("VPR_BENCH_SHARED", REPO_ROOT.parent / "shared"))


@pytest.fixture(scope="session")
def oracles_dir() -> Path:
    """``../shared/oracles``: outputs of the original implementations."""
    path = SHARED / "oracles"
    if not path.is_dir():
        pytest.fail(
            f"Missing {path}: the tests read the oracles from ../shared beside the checkout "
            "(or $VPR_BENCH_SHARED)."
        )
    return path
