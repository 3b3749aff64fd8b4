"""Offline install of the harness and the plugins for the GPU proof.

``pip install --no-index --no-deps --no-build-isolation --target`` from a copy of the sources,
so neither the network nor the preinstalled torch is touched; when pip cannot install, the
sources are used in place with hand-written package metadata so that plugins still register.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from runner import REPO, Runner


def _copy_sources(dest: Path) -> list[Path]:
    """Copy the harness and plugin sources (no build outputs) to ``dest``; the project dirs."""
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", ".venv", "*.pyc")
    shutil.copy2(REPO / "pyproject.toml", dest / "pyproject.toml")
    shutil.copy2(REPO / "README.md", dest / "README.md")
    shutil.copytree(REPO / "harness", dest / "harness", ignore=ignore)
    projects = [dest]
    for plugin in sorted((REPO / "plugins").glob("*/pyproject.toml")):
        target = dest / "plugins" / plugin.parent.name
        shutil.copytree(plugin.parent, target, ignore=ignore)
        projects.append(target)
    return projects


def _fallback_path(work: Path, projects: list[Path]) -> str:
    """Import path of the copied sources with hand-made ``.dist-info`` folders (name, version,
    entry points), used when pip cannot install: plugins and the pytest plugin still register."""
    import tomllib

    meta = work / "site-fallback"
    shutil.rmtree(meta, ignore_errors=True)
    paths = [str(meta)]
    for project in projects:
        data = tomllib.loads((project / "pyproject.toml").read_text())["project"]
        info = meta / f"{data['name'].replace('-', '_')}-{data['version']}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {data['name']}\nVersion: {data['version']}\n"
        )
        groups = dict(data.get("entry-points", {}), console_scripts=data.get("scripts", {}))
        text = "".join(
            f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in entries.items()) + "\n"
            for group, entries in groups.items()
        )
        (info / "entry_points.txt").write_text(text)
        paths.append(str(project / "harness" if project == projects[0] else project))
    return os.pathsep.join(paths)


def install(
    runner: Runner, python: str, cfg: dict[str, Any], torch_before: str
) -> tuple[list[dict[str, str]], str]:
    """pip install the harness and plugins offline into a target folder; (checks, site dir)."""
    src, site = runner.work / "src", runner.work / "site"
    shutil.rmtree(src, ignore_errors=True)
    shutil.rmtree(site, ignore_errors=True)
    src.mkdir(parents=True)
    projects = _copy_sources(src)
    cmd = [
        python,
        "-m",
        "pip",
        "install",
        "--no-index",
        "--no-deps",
        "--no-build-isolation",
        "--disable-pip-version-check",
        "--no-input",
        "--target",
        str(site),
        *map(str, projects),
    ]
    code, seconds = runner.run("install", cmd, cfg["caps"]["install"])
    names = ", ".join(p.name if p != src else "vpr-bench" for p in projects)
    if code != 0:
        detail = f"pip install --no-index --no-deps failed ({runner.stages['install']['status']}); "
        detail += "the stages ran from the copied sources instead"
        return [{"name": "install", "status": "FAIL", "detail": detail}], _fallback_path(
            runner.work, projects
        )
    probe = (
        "import json, importlib.metadata as m, torch, vpr_bench;"
        "print(json.dumps({'torch': torch.__version__, 'torch_file': torch.__file__,"
        "'vpr_bench': vpr_bench.__file__,"
        "'plugins': sorted(e.name for e in m.entry_points(group='vpr_bench')),"
        "'pytest11': sorted(e.name for e in m.entry_points(group='pytest11'))}))"
    )
    env = dict(
        runner.env, PYTHONPATH=os.pathsep.join([str(site), runner.env.get("PYTHONPATH", "")])
    )
    try:
        found = json.loads(
            subprocess.run(
                [python, "-c", probe],
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                check=True,
            ).stdout
        )
    except (subprocess.SubprocessError, ValueError) as exc:
        return [
            {"name": "install", "status": "FAIL", "detail": f"installed, not importable: {exc}"}
        ], str(site)
    ok = (
        found["torch"] == torch_before
        and not found["torch_file"].startswith(str(site))
        and found["vpr_bench"].startswith(str(site))
        and {"netvlad", "sare"} <= set(found["plugins"])
        and "vpr_bench" in found["pytest11"]
    )
    detail = (
        f"{names} installed offline in {seconds:.0f} s (--no-index --no-deps "
        f"--no-build-isolation --target); torch {found['torch']} untouched; plugins "
        f"{', '.join(found['plugins'])}"
    )
    return [{"name": "install", "status": "PASS" if ok else "FAIL", "detail": detail}], str(site)
