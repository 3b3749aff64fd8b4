"""Write a new, complete plugin package (``vpr-bench new-plugin``).

Two kinds:

* ``method``: a model (the public tiny trunk with a GeM head of its own), a tuple loss with a
  margin, a method trained by the built-in ``triplet-mining`` trainer with a ``quick`` profile
  sized for a CPU and the synthetic city, tests built on the conformance kit, a README;
* ``dataset``: a reader of a simple on-disk format (``database.csv`` and ``queries.csv`` of image
  paths and UTM positions per split), its protocol, an example-folder writer, tests, a README.

The package installs as it is written (``pip install -e DIR``) and passes ``vpr-bench check`` and
its own tests. Every name derives from the plugin name: ``acme-vlad`` gives the distribution
``vpr-bench-acme-vlad``, the import package ``vpr_bench_acme_vlad`` and the entry point
``acme-vlad``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from string import Template

from vpr_bench.errors import UsageError

__all__ = ["KINDS", "PluginNames", "plugin_names", "write_plugin"]

KINDS = ("method", "dataset")

_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


@dataclass(frozen=True)
class PluginNames:
    """The names of a generated plugin.

    Attributes:
        name: The plugin (entry point) and component name, lower-kebab.
        distribution: The pip distribution, ``vpr-bench-<name>``.
        package: The import package, ``vpr_bench_<name with underscores>``.
        title: A human title (``Acme Vlad``).
    """

    name: str
    distribution: str
    package: str
    title: str


def plugin_names(name: str) -> PluginNames:
    """Derive every name of a plugin from its lower-kebab ``name``.

    Raises:
        UsageError: ``name`` is not lower-kebab (``acme-vlad``: lower-case letters, digits,
            single hyphens, starting with a letter).
    """
    if not _NAME.match(name):
        raise UsageError(
            f"Plugin name {name!r} is not lower-kebab: use lower-case letters, digits and single "
            "hyphens, starting with a letter (e.g. acme-vlad)."
        )
    snake = name.replace("-", "_")
    return PluginNames(
        name=name,
        distribution=f"vpr-bench-{name}",
        package=f"vpr_bench_{snake}",
        title=" ".join(part.capitalize() for part in name.split("-")),
    )


def write_plugin(name: str, kind: str, parent: Path) -> Path:
    """Write the plugin package ``parent/<name>`` and return its folder.

    Raises:
        UsageError: A bad name or kind, or the folder exists and is not empty.
    """
    if kind not in KINDS:
        raise UsageError(f"--kind must be one of {', '.join(KINDS)}, not {kind!r}.")
    names = plugin_names(name)
    root = Path(parent) / name
    if root.exists() and any(root.iterdir()):
        raise UsageError(
            f"{root} exists and is not empty; choose another --dir or remove it first."
        )
    files = _METHOD_FILES if kind == "method" else _DATASET_FILES
    values = {
        "name": names.name,
        "distribution": names.distribution,
        "package": names.package,
        "title": names.title,
    }
    for relative, text in files.items():
        path = root / Template(relative).substitute(values)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(Template(text).substitute(values), encoding="utf-8")
    return root


_PYPROJECT = """\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "$distribution"
version = "0.1.0"
description = "$title: a vpr-bench $kind plugin"
readme = "README.md"
requires-python = ">=3.11"
dependencies = ["vpr-bench", $dependencies]

[project.optional-dependencies]
test = ["pytest>=8"]

[project.entry-points.vpr_bench]
$name = "$package.plugin"

[tool.setuptools.packages.find]
include = ["$package*"]
"""

_METHOD_FILES: dict[str, str] = {
    "pyproject.toml": _PYPROJECT.replace("$kind", "method").replace(
        "$dependencies", '"torch>=2.2"'
    ),
    "$package/__init__.py": '''\
"""$title: a vpr-bench method plugin (model ``$name``, loss ``$name-margin``, method ``$name``)."""
''',
    "$package/model.py": '''\
"""The ``$name`` model: the public tiny trunk of vpr-bench with a GeM head, L2-normalised."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vpr_bench import bounded
from vpr_bench.models import TinyGeM, TinyGeMConfig


@dataclass
class ModelConfig:
    """Options of the ``$name`` model (``model.*`` keys).

    Attributes:
        width: Width of the tiny trunk; descriptors have ``4 * width`` dimensions.
        gem_p: Initial exponent of the GeM pooling (trained).
    """

    width: int = bounded(16, ge=1)
    gem_p: float = bounded(3.0, gt=0)


class GeMNet(nn.Module):
    """Trunk -> generalised-mean pooling -> L2 normalisation."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.trunk = TinyGeM(TinyGeMConfig(width=config.width, dim=0, seed=None)).features
        self.p = nn.Parameter(torch.tensor(float(config.gem_p)))
        self.descriptor_dim = 4 * config.width

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Map ``[B, 3, H, W]`` images to unit ``[B, 4 * width]`` descriptors."""
        features = self.trunk(images).clamp(min=1e-6)
        pooled = F.adaptive_avg_pool2d(features.pow(self.p), 1).pow(1.0 / self.p).flatten(1)
        return F.normalize(pooled, dim=1)


def build_model(config: ModelConfig) -> GeMNet:
    """The ``$name`` ModelSpec's builder (vpr-bench seeds the run before it is called)."""
    return GeMNet(config)
''',
    "$package/loss.py": '''\
"""The ``$name-margin`` loss: a triplet margin on squared distances, one term per negative."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from vpr_bench import bounded


@dataclass
class MarginConfig:
    """Options of the ``$name-margin`` loss (``loss.*`` keys).

    Attributes:
        margin: How much farther than the positive every negative must be (squared L2).
    """

    margin: float = bounded(0.1, ge=0)


class MarginLoss(nn.Module):
    """``mean_{b,j} max(0, d(a_b, p_b) - d(a_b, n_bj) + margin)`` on squared L2 distances."""

    def __init__(self, config: MarginConfig) -> None:
        super().__init__()
        self.margin = config.margin

    def forward(
        self, anchors: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor
    ) -> torch.Tensor:
        """Loss of ``anchors [B, D]``, ``positives [B, P, D]`` (the first is used) and
        ``negatives [B, N, D]``; each tuple is compared with its own rows only."""
        d_pos = (anchors - positives[:, 0]).pow(2).sum(-1)  # [B]
        d_neg = (anchors[:, None, :] - negatives).pow(2).sum(-1)  # [B, N]
        return torch.relu(d_pos[:, None] - d_neg + self.margin).mean()
''',
    "$package/plugin.py": '''\
"""vpr-bench hooks of $name: pure data, heavy objects as lazy ``"pkg.mod:obj"`` targets."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from vpr_bench import BatchKind, LossSpec, MethodSpec, ModelSpec, hookimpl

QUICK_PROFILE: dict[str, Any] = {
    "seed": 0,
    "train_dataset": "synthcity-train",
    "val_dataset": "synthcity-val",
    "model.width": 8,
    "trainer.epochs": 1,
    "trainer.lr": 1e-3,
    "trainer.height": 120,
    "trainer.width": 160,
    "trainer.cache_queries": 1000,
    "trainer.neg_num": 5,
    "trainer.neg_pool": 100,
    "trainer.tuples_per_step": 4,
    "trainer.cache_images": True,
}
"""Sized for a CPU and the synthetic city (see every key: vpr-bench list methods --options
$name --profile quick)."""


@hookimpl
def vpr_bench_models() -> Iterator[ModelSpec]:
    """Register the ``$name`` model."""
    yield ModelSpec(
        name="$name",
        build="$package.model:build_model",
        config_cls="$package.model:ModelConfig",
        summary="tiny trunk + GeM head ($title)",
    )


@hookimpl
def vpr_bench_losses() -> Iterator[LossSpec]:
    """Register the ``$name-margin`` loss."""
    yield LossSpec(
        name="$name-margin",
        build="$package.loss:MarginLoss",
        config_cls="$package.loss:MarginConfig",
        batch_kind=BatchKind.TUPLES,
        summary="triplet margin on squared L2, one term per negative ($title)",
    )


@hookimpl
def vpr_bench_methods() -> Iterator[MethodSpec]:
    """Register the ``$name`` method (trained by the built-in triplet-mining trainer)."""
    yield MethodSpec(
        name="$name",
        model="$name",
        loss="$name-margin",
        trainer="triplet-mining",
        train_dataset="synthcity-train",
        profiles={"quick": QUICK_PROFILE},
        summary="$title: tiny trunk + GeM, margin loss on mined tuples",
    )
''',
    "tests/test_conformance.py": '''\
"""The conformance kit on the plugin's model and loss."""

from vpr_bench.testing import LossConformance, ModelConformance


class TestModel(ModelConformance):
    plugins = ("$package.plugin",)
    model_name = "$name"
    model_overrides = {"width": 8}


class TestLoss(LossConformance):
    plugins = ("$package.plugin",)
    loss_name = "$name-margin"
''',
    "tests/test_method.py": '''\
"""The method's parts fit together and its quick profile resolves."""

from vpr_bench import resolve_experiment


class TestMethod:
    plugins = ("$package.plugin",)  # what the kit's vpr_plugin_manager fixture loads

    def test_quick_profile_resolves(self, vpr_plugin_manager) -> None:
        registries = vpr_plugin_manager.registries()
        method = registries.methods.get("$name")
        registries.check_method(method)
        config = resolve_experiment(method, registries, profile="quick")
        assert config.model.width == 8 and config.trainer.epochs == 1
''',
    "README.md": """\
# $distribution

$title, a method plugin for [vpr-bench](https://example.invalid/vpr-bench): a small convolutional
trunk with a GeM head (model `$name`), trained with a triplet margin loss (`$name-margin`) on
tuples mined by vpr-bench's `triplet-mining` trainer (method `$name`).

## Install and check

    pip install -e .
    vpr-bench plugins                      # lists $name
    vpr-bench check $name                  # the conformance kit on the model and the loss
    pytest tests                           # this package's own tests

## Run on the tiny synthetic city (seconds on a CPU)

    vpr-bench data prepare synthcity --size tiny --root /tmp/city
    vpr-bench run --plugins $name --dataset synthcity --profile quick \\
        --data-root /tmp/city/synthcity-tiny --train-root /tmp/city/synthcity-tiny

Every option of the method: `vpr-bench list methods --options $name --profile quick`.

## Results

Not measured yet. After a run, copy your row from the leaderboard page vpr-bench wrote
(`leaderboards/synthcity.md`), with the command that made it.
""",
}

_DATASET_FILES: dict[str, str] = {
    "pyproject.toml": _PYPROJECT.replace("$kind", "dataset").replace(
        "$dependencies", '"numpy>=1.26", "Pillow>=10"'
    ),
    "$package/__init__.py": '''\
"""$title: a vpr-bench dataset plugin (dataset ``$name``, split ``test``)."""
''',
    "$package/reader.py": '''\
"""Reader of the ``$name`` format.

On disk, per split (``test``)::

    <root>/<split>/database.csv    header: path,easting,northing
    <root>/<split>/queries.csv     header: path,easting,northing[,condition]
    <root>/<split>/<image files>   paths in the CSVs are relative to the split folder

Positions are UTM metres; a query's positives are the database images within the protocol's
radius (25 m).
"""

from __future__ import annotations

import csv
from pathlib import Path

from vpr_bench import DataError
from vpr_bench.data import GeoSplit, ImageRecord

COLUMNS = ("path", "easting", "northing")


def read_records(csv_path: Path) -> tuple[ImageRecord, ...]:
    """The images listed in one CSV file.

    Raises:
        DataError: The file is missing, lacks a column, has a bad number, or names a missing
            image; the message names the file and the line.
    """
    if not csv_path.is_file():
        raise DataError(f"{csv_path} is missing: a $name split holds database.csv and queries.csv.")
    records = []
    with csv_path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(
                f"{csv_path}: missing column(s) {', '.join(missing)}; the header must be "
                "path,easting,northing[,condition]."
            )
        for line, row in enumerate(reader, start=2):
            try:
                east, north = float(row["easting"]), float(row["northing"])
            except ValueError:
                message = f"{csv_path}:{line}: easting and northing must be numbers."
                raise DataError(message) from None
            image = csv_path.parent / row["path"]
            if not image.is_file():
                raise DataError(f"{csv_path}:{line}: image {image} does not exist.")
            condition = row.get("condition") or None
            records.append(ImageRecord(image, easting=east, northing=north, condition=condition))
    if not records:
        raise DataError(f"{csv_path} lists no image.")
    return tuple(records)


def load(root: Path, split: str) -> GeoSplit:
    """The ``$name`` DatasetSpec's reader: ``load(root, split) -> GeoSplit``."""
    folder = Path(root) / split
    return GeoSplit(
        name=f"$name-{split}",
        database=read_records(folder / "database.csv"),
        queries=read_records(folder / "queries.csv"),
        root=Path(root),
    )
''',
    "$package/example.py": '''\
"""Write a small example folder in the ``$name`` format (for tests and first runs)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image


def write_example(root: Path, n_database: int = 12, n_queries: int = 6, seed: int = 0) -> Path:
    """Images of a street of coloured facades every 10 m; queries are darker views of it.

    Returns:
        ``root`` (holding ``test/database.csv``, ``test/queries.csv`` and the images).
    """
    rng = np.random.default_rng(seed)
    folder = Path(root) / "test"
    folder.mkdir(parents=True, exist_ok=True)
    colours = rng.uniform(0, 255, size=(n_database, 3))

    def view(position: float, dark: bool) -> np.ndarray:
        image = np.zeros((48, 64, 3), dtype=np.float32)
        for column in range(64):
            place = int(np.clip(round(position / 10 + (column - 32) / 64), 0, n_database - 1))
            image[:, column] = colours[place]
        image[::6] *= 0.5  # windows
        return (image * (0.4 if dark else 1.0)).clip(0, 255).astype(np.uint8)

    rows = {"database": [], "queries": []}
    for i in range(n_database):
        name = f"db_{i:03d}.png"
        Image.fromarray(view(10.0 * i, False)).save(folder / name)
        rows["database"].append((name, 10.0 * i, 0.0, ""))
    for i in range(n_queries):
        east = float(rng.uniform(0, 10.0 * (n_database - 1)))
        name = f"q_{i:03d}.png"
        Image.fromarray(view(east, True)).save(folder / name)
        rows["queries"].append((name, east, 0.0, "dark"))
    for kind, items in rows.items():
        with (folder / f"{kind}.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["path", "easting", "northing", "condition"])
            writer.writerows(items)
    return Path(root)
''',
    "$package/plugin.py": '''\
"""vpr-bench hooks of $name: the dataset and its protocol."""

from __future__ import annotations

from collections.abc import Iterator

from vpr_bench import DatasetSpec, EvalProtocol, hookimpl

PROTOCOL = EvalProtocol("$name-test", split="test", radius_m=25.0, recall_ns=(1, 5, 10))
"""A query is answered when a retrieved image lies within 25 m of it."""


@hookimpl
def vpr_bench_datasets() -> Iterator[DatasetSpec]:
    """Register the ``$name`` dataset."""
    yield DatasetSpec(
        name="$name",
        version=1,
        splits=("test",),
        load="$package.reader:load",
        protocols=(PROTOCOL,),
        provides=frozenset({"conditions"}),
        default_root="~/data/vpr/$name",
        summary="$title: database.csv/queries.csv of image paths and UTM positions",
    )
''',
    "tests/test_reader.py": '''\
"""The reader on an example folder, and its errors on bad files."""

from pathlib import Path

import pytest

from $package.example import write_example
from $package.reader import load
from vpr_bench import DataError


def test_example_loads(tmp_path: Path) -> None:
    split = load(write_example(tmp_path), "test")
    assert (len(split.database), len(split.queries)) == (12, 6)
    assert split.queries[0].condition == "dark"


def test_missing_column_names_the_file(tmp_path: Path) -> None:
    root = write_example(tmp_path)
    csv_path = root / "test" / "queries.csv"
    csv_path.write_text("path,easting\\nq_000.png,1.0\\n", encoding="utf-8")
    with pytest.raises(DataError, match="queries.csv: missing column"):
        load(root, "test")


class TestRegistration:
    plugins = ("$package.plugin",)  # what the kit's vpr_plugin_manager fixture loads

    def test_registered(self, vpr_plugin_manager) -> None:
        spec, split = vpr_plugin_manager.registries().dataset_split("$name")
        assert (spec.name, split) == ("$name", "test")
''',
    "README.md": """\
# $distribution

$title, a dataset plugin for vpr-bench: split `test` of a folder of images listed in
`database.csv` and `queries.csv` (columns `path,easting,northing[,condition]`, UTM metres, paths
relative to the split folder). Positives lie within 25 m.

## Install and check

    pip install -e .
    vpr-bench list datasets                        # lists $name
    python -c "from $package.example import write_example; write_example('/tmp/$name')"
    vpr-bench data check $name --root /tmp/$name
    pytest tests

## Evaluate a method on it

    vpr-bench run --plugins netvlad --dataset $name --data-root /tmp/$name

## Results

Not measured yet. After a run, copy the rows of the leaderboard page vpr-bench wrote.
""",
}
