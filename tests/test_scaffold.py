"""``vpr-bench new-plugin``: names, refusals, and generated plugins that install and work."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from vpr_bench.cli import main
from vpr_bench.errors import UsageError
from vpr_bench.scaffold import plugin_names, write_plugin


def test_names_derive_from_the_plugin_name() -> None:
    names = plugin_names("acme-vlad2")
    assert (names.distribution, names.package, names.title) == (
        "vpr-bench-acme-vlad2",
        "vpr_bench_acme_vlad2",
        "Acme Vlad2",
    )


@pytest.mark.parametrize("name", ["Acme", "acme_vlad", "2vlad", "acme--vlad", "acme-", ""])
def test_bad_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(UsageError, match="is not lower-kebab"):
        write_plugin(name, "method", tmp_path)


def test_existing_folder_is_not_overwritten(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "acme").mkdir()
    (tmp_path / "acme" / "mine.py").write_text("keep me\n")
    assert main(["new-plugin", "acme", "--dir", str(tmp_path)]) == 2
    assert "exists and is not empty" in capsys.readouterr().err
    assert (tmp_path / "acme" / "mine.py").read_text() == "keep me\n"


def _run(cmd: list[str], env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run(
        cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_generated_plugins_install_and_pass_their_checks(tmp_path: Path) -> None:
    """Both kinds as generated install, pass `check` and their own tests; `data check` accepts
    the dataset's example folder. (tests/test_guide.py trains a generated method on the tiny
    city to a leaderboard row.)"""
    assert main(["new-plugin", "acme-vlad", "--dir", str(tmp_path)]) == 0
    assert main(["new-plugin", "street-csv", "--kind", "dataset", "--dir", str(tmp_path)]) == 0
    site = tmp_path / "site"
    python = sys.executable
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), *sys.path[1:]])}
    env.pop("VPR_BENCH_PLUGINS", None)
    _run(
        [python, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target",
         str(site), str(tmp_path / "acme-vlad"), str(tmp_path / "street-csv")],
        env,
        tmp_path,
    )  # fmt: skip
    cli = [python, "-m", "vpr_bench"]
    listed = _run([*cli, "plugins"], env, tmp_path)
    assert "vpr-bench-acme-vlad" in listed and "vpr-bench-street-csv" in listed
    _run([*cli, "check", "acme-vlad"], env, tmp_path)
    for package in ("acme-vlad", "street-csv"):
        _run(
            [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
            env,
            tmp_path / package,
        )
    example = tmp_path / "example"
    code = f"import vpr_bench_street_csv.example as e; e.write_example({str(example)!r})"
    _run([python, "-c", code], env, tmp_path)
    checked = _run([*cli, "data", "check", "street-csv", "--root", str(example)], env, tmp_path)
    assert "OK: all 18 files exist" in checked
