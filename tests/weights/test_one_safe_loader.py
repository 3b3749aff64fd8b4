"""Layout rules of weights loading: one ``torch.load`` call site; plugins use the public API."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SAFE_LOADER = REPO / "harness" / "vpr_bench" / "weights" / "files.py"
PUBLIC = {
    "vpr_bench",
    "vpr_bench.data",
    "vpr_bench.errors",
    "vpr_bench.models",
    "vpr_bench.testing",
    "vpr_bench.train",
    "vpr_bench.weights",
}


def _sources(*roots: Path) -> list[Path]:
    return sorted(p for root in roots for p in root.rglob("*.py") if ".venv" not in p.parts)


def _torch_load_calls(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "load"
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "torch"
    ]


def test_torch_load_is_called_in_the_safe_loader_only() -> None:
    calls = {
        f"{path.relative_to(REPO)}:{line}"
        for path in _sources(REPO / "harness", REPO / "plugins")
        for line in _torch_load_calls(path)
    }
    assert len([c for c in calls if c.startswith(str(SAFE_LOADER.relative_to(REPO)))]) == 1
    others = sorted(c for c in calls if not c.startswith(str(SAFE_LOADER.relative_to(REPO))))
    assert others == [], f"load through vpr_bench.weights.safe_load instead: {others}"


def test_method_plugins_import_only_the_public_api() -> None:
    private = []
    for path in _sources(*(REPO / "plugins").glob("*/vpr_bench_*")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            for name in names:
                if name.split(".")[0] == "vpr_bench" and name not in PUBLIC:
                    private.append(f"{path.relative_to(REPO)}:{node.lineno} imports {name}")
    assert private == [], "plugins may import only " + ", ".join(sorted(PUBLIC))
