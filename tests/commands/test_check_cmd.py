"""`vpr-bench check`: the conformance kit run on an installed plugin."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.plugin_factory import write_distribution
from vpr_bench.cli import main

NOT_NORMALISED = """
import torch
from vpr_bench import ModelSpec, hookimpl
from vpr_bench.builtin.tiny_model import TinyGeMConfig


class Raw(torch.nn.Module):
    descriptor_dim = 3

    def forward(self, x):
        return x.mean(dim=(2, 3))  # forgets the L2 normalisation


@hookimpl
def vpr_bench_models():
    yield ModelSpec(name="raw-mean", build=lambda cfg: Raw(), config_cls=TinyGeMConfig)
"""


def test_check_passes_a_conforming_plugin(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_distribution(site, "vpr-bench-throwaway", "throwaway", "vpr_bench_throwaway", "throw-net")
    assert main(["--plugins", "throwaway", "check", "throwaway"]) == 0
    assert "5 passed" in capsys.readouterr().out


def test_check_fails_a_model_without_unit_norm(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_distribution(site, "vpr-bench-raw", "raw", "raw_pkg", "x", body=NOT_NORMALISED)
    assert main(["--plugins", "raw", "check", "raw"]) == 1
    out = capsys.readouterr().out
    assert "test_descriptors_are_unit_norm" in out and "failed" in out


def test_check_unknown_plugin(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "builtin.model"]) == 2
    assert "Did you mean: builtin.models?" in capsys.readouterr().err


def test_pytest_arguments_after_the_separator_reach_pytest(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``check NAME -- -x -v`` (the help's example): -v shows each test, -x stops at the first."""
    # its own names: pytest keys the generated test module by the plugin's name
    write_distribution(site, "vpr-bench-raw-v", "rawv", "rawv_pkg", "x", body=NOT_NORMALISED)
    assert main(["--plugins", "rawv", "check", "rawv", "--", "-x", "-v"]) == 1
    out = capsys.readouterr().out
    assert "::test_descriptor_shape_dtype_and_dim PASSED" in out  # -v: one line per test
    assert "1 failed, 1 passed" in out  # -x: stopped at the unit-norm failure
