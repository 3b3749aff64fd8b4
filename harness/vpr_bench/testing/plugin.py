"""The pytest plugin of the conformance kit (registered through the ``pytest11`` entry point).

Adds the markers ``slow`` (skipped unless ``--run-slow`` or ``-m slow``) and ``gpu`` (skipped
unless ``--run-gpu`` or ``-m gpu``, and always skipped without CUDA), and the fixtures
``vpr_plugin_manager`` (isolated: built-ins + the modules in the test class's ``plugins``
attribute) and ``vpr_device`` (``cuda`` when available, else ``cpu``).
"""

from __future__ import annotations

from typing import Any

import pytest

from vpr_bench.plugins import PluginManager
from vpr_bench.testing.isolation import isolated_manager


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--run-slow`` and ``--run-gpu``."""
    group = parser.getgroup("vpr-bench")
    group.addoption("--run-slow", action="store_true", help="run tests marked slow")
    group.addoption("--run-gpu", action="store_true", help="run tests marked gpu (needs CUDA)")


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers."""
    config.addinivalue_line("markers", "slow: long-running tests (run with --run-slow or -m slow)")
    config.addinivalue_line("markers", "gpu: needs CUDA (run with --run-gpu or -m gpu)")


def _asked_for(config: pytest.Config, marker: str) -> bool:
    markexpr = str(config.getoption("markexpr", "") or "")
    explicit = marker in markexpr and f"not {marker}" not in markexpr
    return bool(config.getoption(f"--run-{marker}")) or explicit


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip slow and gpu tests unless asked for; skip gpu tests without CUDA."""
    run_slow = _asked_for(config, "slow")
    run_gpu = _asked_for(config, "gpu")
    cuda = _cuda_available() if any("gpu" in item.keywords for item in items) else False
    for item in items:
        if "slow" in item.keywords and not run_slow:
            item.add_marker(pytest.mark.skip(reason="slow: run with --run-slow or -m slow"))
        if "gpu" in item.keywords:
            if not run_gpu:
                item.add_marker(pytest.mark.skip(reason="gpu: run with --run-gpu or -m gpu"))
            elif not cuda:
                item.add_marker(pytest.mark.skip(reason="gpu: CUDA is not available here"))


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover
        return False
    return bool(torch.cuda.is_available())


@pytest.fixture
def vpr_plugin_manager(request: pytest.FixtureRequest) -> PluginManager:
    """Built-ins plus the test class's ``plugins`` modules; no entry points are read."""
    modules: Any = getattr(request.cls, "plugins", ()) if request.cls else ()
    return isolated_manager(tuple(modules))


@pytest.fixture
def vpr_device() -> str:
    """``"cuda"`` when CUDA is available, else ``"cpu"``."""
    return "cuda" if _cuda_available() else "cpu"
