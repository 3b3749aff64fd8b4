"""Fixtures shared by the harness's own tests: the real data and oracles in ../shared."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("VPR_BENCH_SHARED", REPO_ROOT.parent / "shared"))


def _shared_path(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.fail(
            f"Missing {path}: the tests read the real fixtures from ../shared beside the checkout "
            "(or $VPR_BENCH_SHARED). Clone the project with shared/ beside it."
        )
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``: small real dataset files (never copied into the repo)."""
    return _shared_path("data")


@pytest.fixture(scope="session")
def shared_oracles() -> Path:
    """``../shared/oracles``: outputs of the original implementations."""
    return _shared_path("oracles")


@pytest.fixture(autouse=True, scope="session")
def _limit_threads() -> None:
    """Keep torch to the machine's cores so parallel test runs stay predictable."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture
def cuda_true_fp32() -> Iterator[None]:
    """CUDA matmuls and convolutions in true fp32 (no TF32) for CPU-equality tests."""
    import torch

    old = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = old


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder on sys.path for throwaway plugin distributions; no plugin selection from env."""
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.delenv("VPR_BENCH_PLUGINS", raising=False)
    monkeypatch.delenv("VPR_BENCH_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    return folder
