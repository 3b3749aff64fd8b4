"""Plugin discovery: entry points, allow/block lists, conflicts, failures, CLI listing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.plugin_factory import write_distribution
from vpr_bench.cli import main
from vpr_bench.errors import PluginConflictError, PluginError, UnknownNameError
from vpr_bench.plugins import PluginLoadWarning, PluginManager


def _throwaway_entry_points(manager: PluginManager) -> list[str]:
    return [p.name for p in manager.plugins if p.name.startswith("throw")]


def test_entry_point_plugin_is_discovered_and_registers(site: Path) -> None:
    write_distribution(site, "vpr-bench-throwaway", "throwaway", "vpr_bench_throwaway", "throw-net")
    manager = PluginManager()
    info = next(p for p in manager.plugins if p.name == "throwaway")
    assert (info.distribution, info.version) == ("vpr-bench-throwaway", "1.0")
    registries = manager.registries()
    assert registries.models.entry("throw-net").plugin == "throwaway"
    assert info.provides == {"models": ["throw-net"], "methods": ["throw-net-method"]}


def test_allow_list_loads_only_named_plugins(site: Path) -> None:
    write_distribution(site, "vpr-bench-throw-a", "throwa", "throw_a", "net-a")
    write_distribution(site, "vpr-bench-throw-b", "throwb", "throw_b", "net-b")
    assert _throwaway_entry_points(PluginManager(allow=["throwb"])) == ["throwb"]
    assert sorted(_throwaway_entry_points(PluginManager())) == ["throwa", "throwb"]


def test_allow_list_from_environment(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_distribution(site, "vpr-bench-throw-a", "throwa", "throw_a", "net-a")
    write_distribution(site, "vpr-bench-throw-b", "throwb", "throw_b", "net-b")
    monkeypatch.setenv("VPR_BENCH_PLUGINS", "throwa")
    assert _throwaway_entry_points(PluginManager()) == ["throwa"]


def test_block_list_skips_a_plugin(site: Path) -> None:
    write_distribution(site, "vpr-bench-throw-a", "throwa", "throw_a", "net-a")
    write_distribution(site, "vpr-bench-throw-b", "throwb", "throw_b", "net-b")
    assert _throwaway_entry_points(PluginManager(block=["throwa"])) == ["throwb"]


def test_autoload_off_loads_only_allowed(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_distribution(site, "vpr-bench-throw-a", "throwa", "throw_a", "net-a")
    monkeypatch.setenv("VPR_BENCH_DISABLE_PLUGIN_AUTOLOAD", "1")
    assert _throwaway_entry_points(PluginManager()) == []
    assert _throwaway_entry_points(PluginManager(allow=["throwa"])) == ["throwa"]
    assert any(p.name == "builtin.models" for p in PluginManager().plugins)


def test_same_name_from_two_distributions_is_an_error_naming_both(site: Path) -> None:
    write_distribution(site, "vpr-bench-netvlad-fork", "dupe", "fork_pkg", "fork-net")
    write_distribution(site, "vpr-bench-netvlad-orig", "dupe", "orig_pkg", "orig-net")
    with pytest.raises(PluginConflictError) as err:
        PluginManager()
    assert "vpr-bench-netvlad-fork" in str(err.value)
    assert "vpr-bench-netvlad-orig" in str(err.value)


def test_two_entry_points_naming_one_module_is_one_line_naming_both(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_distribution(site, "vpr-bench-twice", "twice-a", "twice_pkg", "twice-net")
    (info,) = site.glob("vpr_bench_twice-*.dist-info")
    (info / "entry_points.txt").write_text(
        "[vpr_bench]\ntwice-a = twice_pkg.plugin\ntwice-b = twice_pkg.plugin\n"
    )
    with pytest.raises(PluginConflictError, match="twice-a.*twice-b.*vpr-bench-twice"):
        PluginManager()
    for command in (["plugins"], ["list", "models"]):
        assert main(command) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err
        assert "twice-a" in err and "twice-b" in err and "vpr-bench-twice" in err
    assert main(["-p", "no:twice-b", "list", "models"]) == 0  # the way around it
    assert "twice-net" in capsys.readouterr().out


def test_same_component_name_from_two_plugins_is_an_error(site: Path) -> None:
    write_distribution(site, "vpr-bench-one", "one", "one_pkg", "same-net")
    write_distribution(site, "vpr-bench-two", "two", "two_pkg", "same-net")
    with pytest.raises(PluginConflictError, match="same-net.*one.*two"):
        PluginManager().registries()


def test_plugin_that_fails_to_import_is_a_warning_or_strict_error(site: Path) -> None:
    write_distribution(
        site, "vpr-bench-broken", "broken", "broken_pkg", "x", body="raise ImportError('no cuda')\n"
    )
    with pytest.warns(PluginLoadWarning, match="broken_pkg.plugin.*vpr-bench-broken.*no cuda"):
        manager = PluginManager()
    assert "broken" not in [p.name for p in manager.plugins]
    with pytest.raises(PluginError, match="vpr-bench-broken"):
        PluginManager(strict=True)


def test_misspelt_allow_list_name_suggests(site: Path) -> None:
    write_distribution(site, "vpr-bench-geovlad", "geovlad", "gv_pkg", "gv-net")
    with pytest.raises(UnknownNameError, match="Did you mean: geovlad"):
        PluginManager(allow=["geovald"])


def _netvlad_installed() -> bool:
    from importlib import metadata

    return any(ep.name == "netvlad" for ep in metadata.entry_points(group="vpr_bench"))


def test_cli_misspelt_netvlad(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if not _netvlad_installed():
        write_distribution(site, "vpr-bench-netvlad", "netvlad", "nv_pkg", "nv-net")
    assert main(["--plugins", "netvald", "plugins"]) == 2
    assert "Did you mean: netvlad?" in capsys.readouterr().err


def test_unknown_hook_name_is_rejected(site: Path) -> None:
    body = "from vpr_bench import hookimpl\n\n@hookimpl\ndef vpr_bench_modles():\n    return []\n"
    write_distribution(site, "vpr-bench-typo", "typo", "typo_pkg", "x", body=body)
    with pytest.raises(PluginError, match="vpr_bench_modles"):
        PluginManager()


def test_wrong_spec_type_is_rejected(site: Path) -> None:
    body = "from vpr_bench import hookimpl\n\n@hookimpl\ndef vpr_bench_models():\n    yield 'x'\n"
    write_distribution(site, "vpr-bench-wrongtype", "wrongtype", "wt_pkg", "x", body=body)
    with pytest.raises(PluginError, match="yielded a str; expected ModelSpec"):
        PluginManager().registries()


def test_cli_lists_blocks_and_suggests(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_distribution(site, "vpr-bench-geovlad", "geovlad", "gv_pkg", "gv-net")
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "geovlad" in out and "vpr-bench-geovlad" in out and "models: gv-net" in out
    assert main(["plugins", "-p", "no:geovlad"]) == 0
    assert "vpr-bench-geovlad" not in capsys.readouterr().out
    assert main(["--plugins", "geovald", "plugins"]) == 2
    assert "Did you mean: geovlad?" in capsys.readouterr().err


def test_cli_subprocess_sees_installed_plugin(site: Path) -> None:
    write_distribution(site, "vpr-bench-throwaway", "throwaway", "vpr_bench_throwaway", "throw-net")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), *sys.path])}
    done = subprocess.run(
        [sys.executable, "-m", "vpr_bench", "list", "models"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "throw-net" in done.stdout and "throwaway" in done.stdout


def test_allowed_plugin_brings_its_dependencies_components_not_their_methods(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # throwtop (dist vpr-bench-top) requires vpr-bench-mid, which requires vpr-bench-base: a
    # method of throwtop may use the models of both, as sare's methods use netvlad's model.
    write_distribution(site, "vpr-bench-base", "throwbase", "throw_base", "base-net")
    write_distribution(
        site, "vpr_bench.Mid", "throwmid", "throw_mid", "mid-net", requires=("Vpr-Bench_Base>=1",)
    )
    write_distribution(
        site,
        "vpr-bench-top",
        "throwtop",
        "throw_top",
        "top-net",
        requires=("vpr-bench-mid", "vpr-bench-other; extra == 'docs'", "torch>=2.2"),
    )
    write_distribution(site, "vpr-bench-other", "throwother", "throw_other", "other-net")
    manager = PluginManager(allow=["throwtop"])
    loaded = {p.name: p.dependency_of for p in manager.plugins if p.name.startswith("throw")}
    assert loaded == {"throwbase": "throwmid", "throwmid": "throwtop", "throwtop": None}
    registries = manager.registries()
    assert {"base-net", "mid-net", "top-net"} <= set(registries.models.names())
    assert "top-net-method" in registries.methods
    assert "mid-net-method" not in registries.methods
    assert "base-net-method" not in registries.methods
    assert "other-net" not in registries.models
    # Named explicitly, a plugin is loaded as itself, methods included.
    both = PluginManager(allow=["throwtop", "throwmid"])
    assert "mid-net-method" in both.registries().methods
    # Blocked stays blocked.
    blocked = PluginManager(allow=["throwtop"], block=["throwbase"])
    assert "throwbase" not in [p.name for p in blocked.plugins]
    assert main(["--plugins", "throwtop", "plugins"]) == 0
    out = capsys.readouterr().out
    assert "loaded as a dependency of throwtop" in out and "methods not loaded" in out


def test_run_selects_only_the_named_plugins_methods(site: Path) -> None:
    from vpr_bench.pipeline.plan import select_methods

    write_distribution(site, "vpr-bench-base", "throwbase", "throw_base", "base-net")
    write_distribution(
        site, "vpr-bench-top", "throwtop", "throw_top", "top-net", requires=("vpr-bench-base",)
    )
    manager = PluginManager(allow=["throwtop"])
    selected = select_methods(manager.registries(), None, ["throwtop"])
    assert [m.name for m in selected] == ["top-net-method"]
