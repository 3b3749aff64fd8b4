"""Write throwaway plugin distributions (package + .dist-info with an entry point) for tests."""

from __future__ import annotations

import textwrap
from pathlib import Path

PLUGIN_SOURCE = """
from vpr_bench import MethodSpec, ModelSpec, hookimpl


@hookimpl
def vpr_bench_models():
    yield ModelSpec(
        name="{model}",
        build="vpr_bench.builtin.tiny_model:build_tiny_gem",
        config_cls="vpr_bench.builtin.tiny_model:TinyGeMConfig",
        summary="throwaway model",
    )


@hookimpl
def vpr_bench_methods():
    yield MethodSpec(
        name="{model}-method", model="{model}", loss="triplet", trainer="triplet-mining",
        train_dataset="synthcity-train", summary="throwaway method",
    )
"""


def write_distribution(
    site: Path,
    dist: str,
    entry_name: str,
    package: str,
    model: str,
    version: str = "1.0",
    body: str | None = None,
    requires: tuple[str, ...] = (),
) -> None:
    """Create ``site/<package>/`` and ``site/<dist>-<version>.dist-info`` with one entry point.

    ``requires`` become ``Requires-Dist`` lines (e.g. ``"vpr-bench-base>=1"``).
    """
    pkg = site / package
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text("")
    source = body if body is not None else PLUGIN_SOURCE.format(model=model)
    (pkg / "plugin.py").write_text(textwrap.dedent(source))
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    requirements = "".join(f"Requires-Dist: {r}\n" for r in requires)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n{requirements}"
    )
    (info / "entry_points.txt").write_text(f"[vpr_bench]\n{entry_name} = {package}.plugin\n")
