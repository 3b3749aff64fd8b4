"""The README's plugin example really works: it registers, builds and passes the conformance kit."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest

from vpr_bench.testing import ModelConformance, isolated_manager

README = Path(__file__).resolve().parents[1] / "README.md"


def _example_module() -> types.ModuleType:
    text = README.read_text()
    match = re.search(r"<!-- plugin-example -->\n```python\n(.*?)```", text, flags=re.S)
    assert match, "README.md lost its plugin example"
    module = types.ModuleType("readme_plugin_example")
    sys.modules[module.__name__] = module
    exec(compile(match.group(1), "README.md", "exec"), module.__dict__)
    return module


def test_readme_commands_are_the_makefile_targets() -> None:
    text = README.read_text()
    makefile = (README.parent / "Makefile").read_text()
    for target in ("demo", "test"):
        assert f"make {target}" in text and f"\n{target}:" in makefile


class TestReadmePlugin(ModelConformance):
    model_name = "colour-grid"

    @pytest.fixture
    def vpr_plugin_manager(self):  # type: ignore[no-untyped-def]
        return isolated_manager([_example_module()])
