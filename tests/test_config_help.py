"""Config keys are documented from the config dataclasses themselves (``list --options``)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from vpr_bench.cli import main
from vpr_bench.config import flatten
from vpr_bench.config_help import attribute_help, describe_config, method_options
from vpr_bench.experiment import resolve_experiment
from vpr_bench.plugins import PluginManager


@dataclass
class BaseConfig:
    """Options shared by the test configs.

    Attributes:
        lr: Learning rate. A second sentence is not shown.
        mode (str): ``fast`` or ``slow``; the rest of the line
            continues here.
    """

    lr: float = field(default=0.1, metadata={"range": (0.0, None)})
    mode: str = field(default="fast", metadata={"choices": ("fast", "slow")})


@dataclass
class DerivedConfig(BaseConfig):
    """A subclass adds a key.

    Attributes:
        depth: Layers.
    """

    depth: int = 3
    undocumented: bool = False
    helped: int = field(default=1, metadata={"help": "From the field's metadata."})


def test_help_comes_from_every_class_in_the_hierarchy() -> None:
    assert attribute_help(DerivedConfig) == {
        "lr": "Learning rate.",
        "mode": "fast or slow; the rest of the line continues here.",
        "depth": "Layers.",
    }


def test_rows_have_type_default_range_and_help() -> None:
    rows = {r.key: r for r in describe_config(DerivedConfig, "trainer.")}
    assert list(rows) == [
        "trainer.lr",
        "trainer.mode",
        "trainer.depth",
        "trainer.undocumented",
        "trainer.helped",
    ]
    assert (rows["trainer.lr"].type, rows["trainer.lr"].default) == ("float", 0.1)
    assert rows["trainer.lr"].range == "a finite number >= 0"
    assert rows["trainer.mode"].range == "fast | slow"
    assert rows["trainer.depth"].range == ""
    assert rows["trainer.undocumented"].help == ""
    assert rows["trainer.helped"].help == "From the field's metadata."


@pytest.fixture(scope="module")
def manager() -> PluginManager:
    return PluginManager(allow=["netvlad"], autoload=False)


def test_netvlad_options_list_every_key_of_its_resolved_config(manager: PluginManager) -> None:
    registries = manager.registries()
    method = registries.methods.get("netvlad")
    resolved = flatten(resolve_experiment(method, registries).to_dict())
    rows = method_options(method, registries, profile="quick")
    assert {r.key for r in rows} == set(resolved) - {"method", "profile"}
    by_key = {r.key: r for r in rows}
    assert by_key["model.num_clusters"].help.startswith("K, the number of NetVLAD clusters")
    assert by_key["trainer.lr"].help == "Learning rate."  # inherited from LoopConfig
    assert by_key["trainer.epochs"].value == method.profiles["quick"]["trainer.epochs"]
    undocumented = sorted(r.key for r in rows if not r.help)
    assert undocumented == []


def test_cli_lists_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--plugins", "netvlad", "list", "methods", "--options", "netvlad"]) == 0
    out = capsys.readouterr().out
    for key in ("seed", "train_dataset", "val_dataset", "pca_dim", "model.backbone", "loss.margin"):
        assert f"\n{key} " in out
    assert main(["list", "trainers", "--options", "triplet-mining"]) == 0
    out = capsys.readouterr().out
    assert "trainer.neg_num" in out and "Negatives per tuple" in out
    assert main(["list", "losses", "--options", "triplet"]) == 0
    assert "loss.margin" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["list", "datasets", "--options", "synthcity"], "--options works with"),
        (["list", "models", "--options", "tiny-gem", "--profile", "quick"], "--profile belongs"),
        (["list", "methods", "--profile", "quick"], "--profile needs --options"),
        (["list", "methods", "--options", "tiny-tripet"], "Did you mean: tiny-triplet"),
    ],
)
def test_cli_options_usage_errors(
    args: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert says in err and err.count("\n") == 1


def test_train_help_points_to_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "vpr-bench list methods --options METHOD" in capsys.readouterr().out
