"""Fixtures of this plugin's tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from vpr_bench.testing import prepare_synthcity


@pytest.fixture(scope="session")
def labelled_city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny synthetic city with its renderer class maps (``--labels``)."""
    return prepare_synthcity(tmp_path_factory.mktemp("city"), "tiny", seed=0, labels=True)
