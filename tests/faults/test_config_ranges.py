"""Config values out of range: refused at resolve time, exit 2, naming key, value and range."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

import pytest

from tests.faults.conftest import files_under
from vpr_bench import get_registries
from vpr_bench.cli import main
from vpr_bench.experiment import ExperimentConfig
from vpr_bench.ranges import declared_range
from vpr_bench.registry import resolve


def _train(tmp_path: Path, *sets: str) -> int:
    args = ["train", "netvlad", "--runs-dir", str(tmp_path / "runs")]
    for item in sets:
        args += ["--set", item]
    return main(args)


@pytest.mark.parametrize(
    ("setting", "shown", "expected"),
    [
        ("trainer.lr=nan", "trainer.lr = nan", "a finite number > 0"),
        ("trainer.lr=inf", "trainer.lr = inf", "a finite number > 0"),
        ("trainer.epochs=-3", "trainer.epochs = -3", "an integer >= 1"),
        ("trainer.tuples_per_step=0", "trainer.tuples_per_step = 0", "an integer >= 1"),
        ("trainer.momentum=1.5", "trainer.momentum = 1.5", "a finite number in [0, 1]"),
        ("model.num_clusters=0", "model.num_clusters = 0", "an integer >= 1"),
        ("pca_dim=0", "pca_dim = 0", "an integer >= 1"),
    ],
)
def test_out_of_range_setting_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], setting: str, shown: str, expected: str
) -> None:
    """A --set value outside its declared range exits 2 naming the key, value and range."""
    assert _train(tmp_path, setting) == 2
    message = capsys.readouterr().err.strip()
    assert "\n" not in message
    assert f"{shown} is out of range; expected {expected}" in message
    assert f"--set {shown.split(' = ')[0]}=VALUE" in message
    assert not (tmp_path / "runs").exists()


def test_nan_in_a_toml_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """lr = nan in a TOML config is refused like --set, before anything is written."""
    config = tmp_path / "exp.toml"
    config.write_text("[trainer]\nlr = nan\n")
    before = files_under(tmp_path)
    code = main(["train", "netvlad", "--config", str(config), "--runs-dir", str(tmp_path / "r")])
    assert code == 2
    assert "trainer.lr = nan is out of range" in capsys.readouterr().err
    assert files_under(tmp_path) == before


def _numeric(annotation: object) -> bool:
    args = typing.get_args(annotation)
    if args:
        return any(_numeric(a) for a in args if a is not type(None) and a is not Ellipsis)
    return annotation in (int, float)


def test_every_numeric_option_declares_its_range() -> None:
    """Each numeric field of every registered model, loss and trainer config has a range."""
    registries = get_registries()
    classes: set[type] = {ExperimentConfig}
    for registry in (registries.models, registries.losses, registries.trainers):
        for spec in registry:
            config_cls = spec.config_cls
            if config_cls is not None:
                classes.add(resolve(config_cls))
    missing = []
    for cls in classes:
        hints = typing.get_type_hints(cls)
        for field in dataclasses.fields(cls):
            if _numeric(hints[field.name]) and declared_range(field) is None:
                missing.append(f"{cls.__name__}.{field.name}")
    assert not missing, f"numeric options without a declared range: {missing}"
