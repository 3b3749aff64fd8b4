"""The layering rules of the README (section Layout), checked on the imports of every module.

Imports are read from the source (every ``import`` statement, at module level or inside a
function), so a lazy import breaks a rule as much as a top-level one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HARNESS = ROOT / "harness" / "vpr_bench"
PLUGINS = ROOT / "plugins"

PLUGIN_LAYER = ("hookspecs", "plugins", "registry", "specs", "errors")
PUBLIC_MODULES = frozenset(
    {
        "vpr_bench",
        "vpr_bench.data",
        "vpr_bench.errors",
        "vpr_bench.models",
        "vpr_bench.train",
        "vpr_bench.weights",
        "vpr_bench.testing",
        "vpr_bench.records",
        "vpr_bench.cli",
    }
)
"""What a method plugin may import of the harness (its code and its tests)."""


def _is_harness_module(name: str) -> bool:
    rel = Path(*name.split(".")[1:]) if name.startswith("vpr_bench.") else None
    return rel is not None and (
        (HARNESS / rel).with_suffix(".py").is_file() or (HARNESS / rel).is_dir()
    )


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports.

    ``from a.b import c`` gives ``a.b``, and ``a.b.c`` too when ``c`` is a harness module.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(
                f"{node.module}.{alias.name}"
                for alias in node.names
                if _is_harness_module(f"{node.module}.{alias.name}")
            )
    return found


def _module_name(path: Path) -> str:
    parts = path.relative_to(HARNESS.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


HARNESS_MODULES = {_module_name(p): imports_of(p) for p in sorted(HARNESS.rglob("*.py"))}


def _under(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _violations(modules: list[str], forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{module} imports {name}"
        for module in modules
        for name in HARNESS_MODULES[module]
        if any(_under(name, f) for f in forbidden)
    )


def _package(name: str) -> list[str]:
    return [m for m in HARNESS_MODULES if _under(m, f"vpr_bench.{name}")]


def test_the_module_table_is_complete() -> None:
    assert {"vpr_bench.specs", "vpr_bench.data.load", "vpr_bench.eval.evaluate"} <= set(
        HARNESS_MODULES
    )
    assert "vpr_bench.eval.search" in imports_of(HARNESS / "eval" / "evaluate.py")


def test_the_plugin_layer_imports_no_eval_train_or_torch() -> None:
    layer = [f"vpr_bench.{m}" for m in PLUGIN_LAYER]
    forbidden = ("vpr_bench.eval", "vpr_bench.train", "vpr_bench.pipeline", "torch", "numpy")
    assert _violations(layer, forbidden) == []


def test_data_imports_neither_eval_nor_builtin() -> None:
    forbidden = ("vpr_bench.eval", "vpr_bench.builtin", "vpr_bench.train", "vpr_bench.pipeline")
    assert _violations(_package("data"), forbidden) == []


def test_eval_never_imports_train_or_the_pipeline() -> None:
    assert _violations(_package("eval"), ("vpr_bench.train", "vpr_bench.pipeline")) == []


def test_train_never_imports_the_pipeline() -> None:
    assert _violations(_package("train"), ("vpr_bench.pipeline",)) == []


def test_the_leaderboard_reads_records_only() -> None:
    forbidden = (
        "vpr_bench.eval",
        "vpr_bench.train",
        "vpr_bench.data",
        "vpr_bench.pipeline",
        "vpr_bench.weights",
        "torch",
    )
    assert _violations(_package("leaderboard"), forbidden) == []


def test_no_harness_module_imports_a_method_plugin() -> None:
    offenders = sorted(
        f"{module} imports {name}"
        for module, names in HARNESS_MODULES.items()
        for name in names
        if name.startswith("vpr_bench_")
    )
    assert offenders == []


def test_the_rules_catch_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from vpr_bench import eval, hookimpl\n"
        "def f():\n    from vpr_bench.eval.search import knn\n    import torch\n"
    )
    assert imports_of(bad) == {"vpr_bench", "vpr_bench.eval", "vpr_bench.eval.search", "torch"}


PLUGIN_FILES = sorted(p for p in PLUGINS.rglob("*.py") if ".egg-info" not in str(p))


@pytest.mark.parametrize("path", PLUGIN_FILES, ids=lambda p: str(p.relative_to(PLUGINS)))
def test_method_plugins_import_only_the_public_api(path: Path) -> None:
    harness = {n for n in imports_of(path) if _under(n, "vpr_bench")}
    private = sorted(harness - PUBLIC_MODULES)
    assert private == [], f"{path} imports harness internals; use the public API instead"


def test_the_public_modules_exist_and_document_themselves() -> None:
    import importlib

    for name in sorted(PUBLIC_MODULES):
        module = importlib.import_module(name)
        assert (module.__doc__ or "").strip(), f"{name} has no docstring"
        exported = getattr(module, "__all__", None)
        if name not in ("vpr_bench.cli",):
            assert exported, f"{name} declares no __all__"
            for attr in exported:
                assert getattr(module, attr) is not None, f"{name}.{attr}"
