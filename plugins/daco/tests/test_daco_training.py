"""The daco-views trainer end to end on the tiny synthetic city (a few seconds each)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from vpr_bench import resolve_experiment
from vpr_bench.testing import isolated_manager, prepare_synthcity
from vpr_bench.train import load_training_data, train_method
from vpr_bench.weights import safe_load

PLUGINS = ("vpr_bench_daco.plugin",)
SMALL = (
    "device=cpu",
    "trainer.epochs=1",
    "trainer.crop=24",
    "trainer.items_per_batch=8",
    "model.tiny_width=4",
    "model.hidden_dim=8",
    "model.proj_dim=8",
    "loss.dim=8",
)


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepare_synthcity(tmp_path_factory.mktemp("data"), "tiny", seed=0, progress=False)


def _train(city: Path, runs: Path, method: str, *sets: str) -> Any:
    registries = isolated_manager(PLUGINS).registries()
    spec = registries.methods.get(method)
    base = tuple(s for s in SMALL if method in ("moco", "npid") or not s.startswith("loss.dim"))
    config = resolve_experiment(spec, registries, profile="quick", sets=base + sets)
    data = load_training_data(spec, registries, config, dataset_name="synthcity", data_root=city)
    return train_method(spec, registries, config, data, runs_dir=runs)


@pytest.mark.parametrize("method", ["simclr", "simsiam", "npid"])
def test_each_method_trains(city: Path, tmp_path: Path, method: str) -> None:
    # SimSiam compares features (4 x tiny_width = 16-d) with projections: equal widths.
    outcome = _train(
        city, tmp_path, method, *(["model.proj_dim=16"] if method == "simsiam" else [])
    )
    (record,) = outcome.history
    assert torch.isfinite(torch.tensor(record["loss"]))
    assert record["step"] == 48 // 8  # 24 pairs -> 48 items, whole batches of 8
    if method == "npid":
        state = safe_load(outcome.run_dir / "checkpoints" / "last.pt")
        assert isinstance(state, dict)
        paradigm = state["paradigm"]
        assert paradigm["loss.bank"].shape == (48, 8)  # one row per item
        assert torch.isfinite(paradigm["loss.z"])


def test_iterations_set_the_number_of_epochs(city: Path, tmp_path: Path) -> None:
    outcome = _train(city, tmp_path, "daco", "trainer.iterations=13")
    assert [h["epoch"] for h in outcome.history] == [1, 2]  # 13 // (48 // 8) = 2 epochs


def test_simsiam_needs_equal_feature_and_projection_widths(city: Path, tmp_path: Path) -> None:
    from vpr_bench.errors import ConfigError

    with pytest.raises(ConfigError, match="set model.proj_dim=16"):
        _train(city, tmp_path, "simsiam")


def test_batched_augmentation_trains(city: Path, tmp_path: Path) -> None:
    outcome = _train(city, tmp_path, "daco", "trainer.batched_augment=true")
    assert torch.isfinite(torch.tensor(outcome.history[0]["loss"]))


def test_paper_val_selected_keeps_the_epoch_of_the_best_mean_of_three_r1(
    city: Path, tmp_path: Path
) -> None:
    """As DaCo's main.py:72-90: validate on A->B, B->A and A<->B; select on their mean R@1."""
    registries = isolated_manager(PLUGINS).registries()
    spec = registries.methods.get("daco")
    profile_val = resolve_experiment(spec, registries, profile="paper-val-selected").val_dataset
    assert profile_val == "daco-tokyo-ab,daco-tokyo-ba,daco-tokyo-cross"
    names = ("daco-synthcity-ab", "daco-synthcity-ba", "daco-synthcity-cross")
    config = resolve_experiment(
        spec,
        registries,
        profile="quick",
        sets=(
            *SMALL[:-1],
            "trainer.epochs=2",
            "trainer.val_every=1",
            f"val_dataset={','.join(names)}",
        ),
    )
    data = load_training_data(
        spec, registries, config, dataset_name="daco-synthcity", data_root=city
    )
    assert [split.name for split in data.val_splits] == list(names)
    outcome = train_method(spec, registries, config, data, runs_dir=tmp_path)
    for epoch in outcome.history:
        per_split = epoch["val_splits"]
        assert list(per_split) == list(names)
        mean = sum(per_split[name]["R@1"] for name in names) / 3
        assert epoch["val"]["R@1"] == pytest.approx(mean)
    best = max(outcome.history, key=lambda h: h["val"]["R@1"])
    assert outcome.best_val == best["val"]
    assert (outcome.run_dir / "checkpoints" / "best.pt").is_file()


def test_val_dataset_with_an_empty_or_repeated_name_is_refused(city: Path) -> None:
    from vpr_bench.errors import UsageError

    registries = isolated_manager(PLUGINS).registries()
    spec = registries.methods.get("daco")
    for value, match in (
        ("daco-synthcity-ab,,daco-synthcity-ba", "empty name"),
        ("daco-synthcity-ab,daco-synthcity-ab", "daco-synthcity-ab more than once"),
    ):
        config = resolve_experiment(
            spec, registries, profile="quick", sets=(f"val_dataset={value}",)
        )
        with pytest.raises(UsageError, match=match):
            load_training_data(
                spec, registries, config, dataset_name="daco-synthcity", data_root=city
            )
