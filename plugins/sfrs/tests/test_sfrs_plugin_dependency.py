"""``--plugins sfrs`` alone brings the netvlad plugin's model, not its method (needs the plugins
installed: entry points and distribution metadata, as ``make install`` does)."""

from __future__ import annotations

import pytest

from vpr_bench import get_registries
from vpr_bench.cli import main


def test_sfrs_brings_netvlads_components_not_its_method(
    capsys: pytest.CaptureFixture[str],
) -> None:
    registries = get_registries("sfrs")
    assert "netvlad" in registries.models and "netvlad" not in registries.methods
    assert "sfrs" in registries.methods and "sfrs" in registries.losses
    assert main(["--plugins", "sfrs", "plugins"]) == 0
    assert "loaded as a dependency of sfrs" in capsys.readouterr().out
