"""Plugin selection edge cases: unknown blocks, blank allow-lists, named plugins that break."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.plugin_factory import write_distribution
from vpr_bench.cli import main
from vpr_bench.plugins import PluginManager


def test_blocking_an_unknown_plugin_warns_with_a_suggestion(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """-p no:foobar (no such plugin) warns in one line; a near miss gets a did-you-mean."""
    write_distribution(site, "vpr-bench-geovlad", "geovlad", "gv_pkg", "gv-net")
    assert main(["list", "models", "-p", "no:geovald"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "warning: -p no:geovald blocks nothing: no plugin is named 'geovald'. "
        "Did you mean: no:geovlad?"
    ]
    assert main(["list", "models", "-p", "no:foobar"]) == 0
    assert "-p no:foobar blocks nothing" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["", ",,,", " , "])
def test_blank_plugin_list_means_not_set(
    site: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """VPR_BENCH_PLUGINS="" and ",,," both load every plugin, like an unset variable."""
    write_distribution(site, "vpr-bench-geovlad", "geovlad", "gv_pkg", "gv-net")
    monkeypatch.setenv("VPR_BENCH_PLUGINS", value)
    assert "geovlad" in [p.name for p in PluginManager().plugins]


def test_named_plugin_that_fails_to_import_is_an_error(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A plugin named in --plugins that fails to import exits 1; discovered, it only warns."""
    write_distribution(
        site, "vpr-bench-broken", "broken", "broken_pkg", "x", body="raise ImportError('no cuda')\n"
    )
    assert main(["--plugins", "broken", "list", "models"]) == 1
    message = capsys.readouterr().err.strip()
    assert "\n" not in message
    assert "Plugin 'broken' (entry point 'broken_pkg.plugin' of distribution" in message
    assert "failed to import: ImportError: no cuda" in message
    assert "it was named in --plugins/VPR_BENCH_PLUGINS, so this is an error" in message
    assert main(["list", "models"]) == 0
    warning = capsys.readouterr().err.strip()
    assert warning.startswith("warning: Plugin 'broken'") and "was skipped" in warning
