"""Every example in a docstring runs in a test.

The census below finds every literal block (``::``) and doctest (``>>>``) in the docstrings of
the harness and of the method plugins. Each is either run here, run by the hook-spec tests
(``tests/test_hookspecs.py``, one test per hook's example), or declared not to be code (a file
layout, a file format, a shell command). A new example fails the census until a test runs it.
"""

from __future__ import annotations

import ast
import doctest
import re
import sys
import textwrap
import tomllib
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]

NOT_CODE = {
    ("vpr_bench.data.conditions", "<module>"): "a file format",
    ("vpr_bench.data.formats.csv_list", "<module>"): "a folder layout",
    ("vpr_bench.data.formats.datasets_vg", "<module>"): "a file-name format",
    ("vpr_bench.data.formats.msls", "<module>"): "a folder layout",
    ("vpr_bench.data.formats.netvlad_mat", "<module>"): "folder layouts",
    ("vpr_bench.data.formats.vprbench", "<module>"): "a folder layout",
    ("vpr_bench.eval.distributed", "<module>"): "a torchrun command line",
}
"""(module, object) -> what its literal blocks are instead of code."""

RUN_BY_HOOKSPEC_TESTS = "vpr_bench.hookspecs"
"""Each hook's ``Example::`` is run by tests/test_hookspecs.py."""

RUN_HERE = {
    ("vpr_bench.config_help", "<module>"),
    ("vpr_bench.hookspecs", "<module>"),
    ("vpr_bench.leaderboard.escape", "escape_markdown_cell"),
    ("vpr_bench.models", "<module>"),
    ("vpr_bench.ranges", "<module>"),
    ("vpr_bench.testing", "<module>"),
    ("vpr_bench.testing.conformance", "<module>"),
    ("vpr_bench.weights", "<module>"),
}


def _source_files() -> Iterator[tuple[str, Path]]:
    harness = ROOT / "harness"
    for path in sorted((harness / "vpr_bench").rglob("*.py")):
        yield _module_name(path, harness), path
    for plugin in sorted((ROOT / "plugins").iterdir()):
        for path in sorted(plugin.glob("vpr_bench_*/**/*.py")):
            yield _module_name(path, plugin), path


def _module_name(path: Path, base: Path) -> str:
    parts = path.relative_to(base).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _docstrings() -> Iterator[tuple[str, str, str]]:
    """(module, object name, docstring) of every module, class and function."""
    for module, path in _source_files():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                doc = ast.get_docstring(node)
                if doc:
                    yield module, getattr(node, "name", "<module>"), doc


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _literal_blocks(doc: str) -> list[str]:
    """The dedented literal blocks of a docstring: what follows a line ending in ``::``,
    indented deeper than that line."""
    lines, blocks = doc.splitlines(), []
    for i, line in enumerate(lines):
        if not line.rstrip().endswith("::"):
            continue
        body: list[str] = []
        for following in lines[i + 1 :]:
            if following.strip() and _indent(following) <= _indent(line):
                break
            body.append(following)
        blocks.append(textwrap.dedent("\n".join(body)).strip("\n") + "\n")
    return blocks


def _blocks(module: str, name: str) -> list[str]:
    """The dedented literal blocks of one docstring."""
    for mod, obj, doc in _docstrings():
        if (mod, obj) == (module, name):
            return _literal_blocks(doc)
    raise AssertionError(f"no docstring for {module}.{name}")


def test_every_docstring_example_is_run_or_declared_not_code() -> None:
    found = {
        (module, name)
        for module, name, doc in _docstrings()
        if _literal_blocks(doc) or ">>>" in doc
    }
    hook_examples = {(m, n) for m, n in found if m == RUN_BY_HOOKSPEC_TESTS and n != "<module>"}
    assert found - hook_examples - RUN_HERE - set(NOT_CODE) == set(), (
        "a docstring example no test runs: run it in tests/test_docstring_examples.py"
    )
    assert (RUN_HERE | set(NOT_CODE)) <= found, "an entry of the census has no example any more"


def _exec(source: str, name: str, **namespace: Any) -> dict[str, Any]:
    module = types.ModuleType(name)
    module.__dict__.update(namespace)
    sys.modules[name] = module  # dataclasses defined in the example need it
    try:
        exec(compile(source, f"<{name}>", "exec"), module.__dict__)
    finally:
        del sys.modules[name]
    return module.__dict__


def test_hookspecs_entry_point_example_is_valid_toml() -> None:
    (block,) = _blocks("vpr_bench.hookspecs", "<module>")
    table = tomllib.loads(block)
    (target,) = table["project"]["entry-points"]["vpr_bench"].values()
    assert re.fullmatch(r"[a-z_][a-z0-9_.]*", target)


def test_escape_doctest() -> None:
    from vpr_bench.leaderboard import escape

    finder, runner = doctest.DocTestFinder(), doctest.DocTestRunner()
    for test in finder.find(escape.escape_markdown_cell, globs=vars(escape)):
        runner.run(test)
    assert runner.failures == 0 and runner.tries >= 1


def test_models_example_gives_the_tiny_trunk() -> None:
    (block,) = _blocks("vpr_bench.models", "<module>")
    trunk = _exec(block, "example_models")["trunk"]
    assert trunk(torch.zeros(1, 3, 32, 32)).shape[1] == 64


def test_weights_example_maps_keys_and_loads(tmp_path: Path) -> None:
    from vpr_bench.errors import DataError

    (block,) = _blocks("vpr_bench.weights", "<module>")

    class Model(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.trunk = nn.Linear(2, 3)

    source = Model()
    path = tmp_path / "authors.pth"
    payload = {k.replace("trunk.", "backbone."): v for k, v in source.state_dict().items()}
    torch.save({"state_dict": payload}, path)
    model = Model()
    _exec(block, "example_weights", path=path, model=model)
    for key, value in source.state_dict().items():
        assert torch.equal(model.state_dict()[key], value)
    torch.save({"state_dict": {"backbone.weight": torch.zeros(1)}}, path)
    with pytest.raises(DataError, match="backbone=resnet50"):
        _exec(block, "example_weights", path=path, model=Model())


def _run_model_kit(kit_cls: type) -> None:
    from vpr_bench.config import apply_overrides
    from vpr_bench.registry import resolve
    from vpr_bench.testing import isolated_manager

    kit = kit_cls()
    spec = isolated_manager(kit.plugins).registries().models.get(kit.model_name)

    def build() -> nn.Module:
        config = apply_overrides(resolve(spec.config_cls)(), kit.model_overrides, source="test")
        model: nn.Module = resolve(spec.build)(config)
        return model.eval()

    for name in dir(kit):
        if name.startswith("test_"):
            check = getattr(kit, name)
            if "spec" in check.__code__.co_varnames[: check.__code__.co_argcount]:
                check(spec, build())
            else:
                check(build())


def _run_loss_kit(kit_cls: type) -> None:
    from vpr_bench.config import apply_overrides
    from vpr_bench.registry import resolve
    from vpr_bench.testing import isolated_manager

    kit = kit_cls()
    spec = isolated_manager(kit.plugins).registries().losses.get(kit.loss_name)
    for name in dir(kit):
        if name.startswith("test_"):
            config = apply_overrides(resolve(spec.config_cls)(), kit.loss_overrides, source="t")
            getattr(kit, name)(spec, resolve(spec.build)(config))


def test_testing_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vpr_bench import ModelSpec, hookimpl

    kit_block, city_block = _blocks("vpr_bench.testing", "<module>")
    plugin = types.ModuleType("my_plugin.plugin")

    @hookimpl
    def vpr_bench_models() -> Any:
        yield ModelSpec(
            name="my-model",
            build="vpr_bench.models:build_tiny_gem",
            config_cls="vpr_bench.models:TinyGeMConfig",
        )

    plugin.vpr_bench_models = vpr_bench_models  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "my_plugin", types.ModuleType("my_plugin"))
    monkeypatch.setitem(sys.modules, "my_plugin.plugin", plugin)
    _run_model_kit(_exec(kit_block, "example_testing")["TestMyModel"])
    city = _exec(city_block, "example_city", tmp_path=tmp_path)["city"]
    assert (Path(city) / "manifest.json").is_file() or any(Path(city).iterdir())


def test_conformance_examples_run() -> None:
    (block,) = _blocks("vpr_bench.testing.conformance", "<module>")
    namespace = _exec(block, "example_conformance")
    _run_model_kit(namespace["TestNetVLAD"])
    _run_loss_kit(namespace["TestSareJoint"])


def test_config_help_example_declares_a_range_and_choices() -> None:
    from dataclasses import dataclass, field

    from vpr_bench.config_help import describe_config

    (block,) = _blocks("vpr_bench.config_help", "<module>")
    source = "@dataclass\nclass Options:\n" + textwrap.indent(block, "    ")
    options = _exec(source, "example_config_help", dataclass=dataclass, field=field)["Options"]
    rows = {row.key: row for row in describe_config(options)}
    assert (rows["lr"].range, rows["lr"].help) == ("a finite number >= 0", "Learning rate.")
    assert rows["norm"].range == "batch | none"


def test_ranges_example_declares_and_checks_ranges() -> None:
    from dataclasses import dataclass, field

    from vpr_bench.errors import ConfigError
    from vpr_bench.ranges import bounded, check_ranges

    (block,) = _blocks("vpr_bench.ranges", "<module>")
    names = {"dataclass": dataclass, "field": field, "bounded": bounded}
    config = _exec(block, "example_ranges", **names)["MyTrainerConfig"]()
    check_ranges(config)
    config.lr = float("nan")
    with pytest.raises(ConfigError, match="lr"):
        check_ranges(config)
