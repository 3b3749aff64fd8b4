"""The strict key report: missing, unexpected and shape-mismatched keys, one message."""

from __future__ import annotations

from pathlib import Path

import torch

from vpr_bench.weights import KeyReport, ShapeMismatch, compare_keys


def test_report_lists_each_kind_of_difference() -> None:
    model = {"a": torch.zeros(2), "b": torch.zeros(3, 4), "c": torch.zeros(1)}
    found = {"a": torch.zeros(2), "b": torch.zeros(4, 3), "extra": torch.zeros(1)}
    report = compare_keys(model, found)
    assert report == KeyReport(("c",), ("extra",), (ShapeMismatch("b", (4, 3), (3, 4)),))
    assert not report.ok and report.mismatched_names == {"b"}
    assert report.describe() == (
        "missing keys: c | unexpected keys: extra | "
        "shape mismatches: b: file (4, 3) vs model (3, 4)"
    )
    assert (
        compare_keys(model, model).ok and compare_keys(model, model).describe() == "all keys match"
    )


def test_error_names_file_model_and_fix_and_shortens_long_lists() -> None:
    model = {f"k{i:02d}": torch.zeros(1) for i in range(25)}
    error = compare_keys(model, {}).error(Path("w.pth"), "TinyGeM", hint="Use width=8.")
    message = str(error)
    assert message.startswith("w.pth: the weights do not fit model TinyGeM: missing keys: k00, ")
    assert "k09, ... (+15 more). Use width=8." in message and "k10" not in message
