"""Built-in dataset registrations: protocol names of protocols.md, lazy loaders, no heavy import."""

from __future__ import annotations

import subprocess
import sys

import pytest

from vpr_bench.builtin import datasets as builtin_datasets
from vpr_bench.registry import Registries, resolve

PROTOCOL_NAMES = {
    "pitts30k-test",
    "pitts30k-val",
    "pitts250k-test",
    "pitts250k-val",
    "tokyo247",
    "tokyo247-vg",
    "tokyotm-val",
    "msls-val",
    "msls-val-merged",
    "vg-folder",
    "vprbench-folder",
    "csv-folder",
}


@pytest.fixture(scope="module")
def registries() -> Registries:
    regs = Registries()
    for spec in builtin_datasets.vpr_bench_datasets():
        regs.datasets.add(spec.name, spec, "builtin.datasets", "vpr-bench")
    return regs


def test_protocols_and_capabilities(registries: Registries) -> None:
    protocols = registries.protocols()
    assert set(protocols) >= PROTOCOL_NAMES
    assert {"pitts30k", "pitts250k", "tokyotm", "msls", "vg-folder"} <= {
        d.name for d in registries.datasets if "train" in d.provides
    }
    assert "train" not in registries.datasets.get("tokyo247").provides
    tokyo = protocols["tokyo247"][0]
    assert (
        tokyo.place_nms
        and tokyo.query_resize.shorter == 640
        and tokyo.db_resize.describe() == "480x640"
    )
    assert protocols["msls-val"][0].no_positive == "exclude"
    assert protocols["vprbench-folder"][0].ground_truth == "lists"
    assert protocols["tokyotm-val"][0].drop_same_timestamp


@pytest.mark.parametrize(
    ("name", "dataset", "split"),
    [
        ("pitts30k-test", "pitts30k", "test"),
        ("tokyo247", "tokyo247", "test"),
        ("tokyo247-vg", "tokyo247", "vg"),
        ("msls-val-merged", "msls", "val-merged"),
        ("tokyotm", "tokyotm", "val"),
    ],
)
def test_dataset_split_names(registries: Registries, name: str, dataset: str, split: str) -> None:
    spec, got = registries.dataset_split(name)
    assert (spec.name, got) == (dataset, split)
    protocol = builtin_datasets.protocol_for(dataset, split)
    assert protocol is not None and protocol.split == split


def test_every_loader_resolves(registries: Registries) -> None:
    for spec in registries.datasets:
        assert callable(resolve(spec.load)), spec.name


def test_module_imports_nothing_heavy() -> None:
    code = (
        "import sys, vpr_bench.builtin.datasets as d; list(d.vpr_bench_datasets()); "
        "heavy = {'scipy', 'torch', 'pandas', 'faiss'} & set(sys.modules); "
        "print(sorted(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
