"""Config: TOML files and --set overrides onto dataclasses."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Literal

import pytest

from vpr_bench.config import apply_overrides, config_hash, load_toml, parse_sets, to_dict
from vpr_bench.errors import ConfigError, UnknownNameError
from vpr_bench.experiment import resolve_experiment
from vpr_bench.specs import MethodSpec
from vpr_bench.testing import isolated_manager


class Optimiser(Enum):
    SGD = "sgd"
    ADAM = "adam"


@dataclass
class Trainer:
    lr: float = 1e-3
    epochs: int = 5
    amp: bool = False
    optimizer: Optimiser = Optimiser.SGD
    schedule: Literal["step", "cosine"] = "step"
    size: tuple[int, int] = (480, 640)
    clip: float | None = None


@dataclass
class Top:
    seed: int = 0
    trainer: Trainer = field(default_factory=Trainer)


def test_set_overrides_convert_types() -> None:
    sets = parse_sets(
        [
            "trainer.lr=0.01",
            "trainer.epochs=2",
            "trainer.amp=true",
            "trainer.optimizer=adam",
            "trainer.schedule=cosine",
            "trainer.size=120,160",
            "trainer.clip=none",
            "seed=7",
        ]
    )
    config = apply_overrides(Top(), sets, source="--set")
    assert config == Top(
        seed=7, trainer=Trainer(0.01, 2, True, Optimiser.ADAM, "cosine", (120, 160), None)
    )
    assert Top() == Top()  # the original is untouched


def test_unknown_key_suggests() -> None:
    with pytest.raises(
        ConfigError, match=r"^--set trainer\.lrr: unknown config key\. Did you mean: lr\?"
    ):
        apply_overrides(Top(), {"trainer.lrr": "1"}, source="--set")
    with pytest.raises(ConfigError, match="Did you mean: seed"):
        apply_overrides(Top(), {"sed": "1"}, source="--set")


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("trainer.epochs", "two", "epochs must be int"),
        ("trainer.amp", "maybe", "amp must be bool"),
        ("trainer.schedule", "linear", "schedule must be one of step, cosine"),
        ("trainer.optimizer", "lbfgs", "optimizer must be one of sgd, adam"),
        ("trainer.size", "1,2,3", "size needs 2 comma-separated values"),
        ("seed.x", "1", "'seed' is a plain int value"),
    ],
)
def test_bad_values_are_named(key: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        apply_overrides(Top(), {key: value}, source="--set")


def test_parse_sets_rejects_missing_equals() -> None:
    with pytest.raises(ConfigError, match="--set expects key=value"):
        parse_sets(["trainer.lr"])


def test_toml_file(tmp_path: Path) -> None:
    path = tmp_path / "exp.toml"
    path.write_text("seed = 3\n[trainer]\nlr = 0.5\nsize = [96, 128]\n")
    config = apply_overrides(Top(), load_toml(path), source=str(path))
    assert config.seed == 3 and config.trainer.lr == 0.5 and config.trainer.size == (96, 128)
    broken = tmp_path / "broken.toml"
    broken.write_text("seed = = 3")
    with pytest.raises(ConfigError, match="broken.toml is not valid TOML"):
        load_toml(broken)
    with pytest.raises(ConfigError, match="does not exist"):
        load_toml(tmp_path / "missing.toml")


def test_to_dict_and_hash_are_stable() -> None:
    d = to_dict(Top())
    assert d["trainer"]["optimizer"] == "sgd" and d["trainer"]["size"] == [480, 640]
    assert config_hash(d) == config_hash(to_dict(Top()))
    assert config_hash(d) != config_hash(to_dict(Top(seed=1)))


def _method(**profiles: dict[str, object]) -> MethodSpec:
    return MethodSpec(
        name="tiny-test",
        model="tiny-gem",
        loss="triplet",
        trainer="triplet-mining",
        train_dataset="synthcity-train",
        profiles=profiles,
    )


def test_experiment_layers_profile_file_and_sets(tmp_path: Path) -> None:
    registries = isolated_manager().registries()
    method = _method(quick={"model.width": 8, "seed": 5})
    path = tmp_path / "exp.toml"
    path.write_text("[model]\ndim = 32\n")
    config = resolve_experiment(
        method, registries, profile="quick", config_file=path, sets=["model.width=4"]
    )
    assert (config.profile, config.seed, config.model.width, config.model.dim) == (
        "quick",
        5,
        4,
        32,
    )
    with pytest.raises(UnknownNameError, match="Did you mean: quick"):
        resolve_experiment(method, registries, profile="quik")
