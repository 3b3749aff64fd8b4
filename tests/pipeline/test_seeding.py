"""The run's seed covers a model's initial weights, at every place a model is built.

A plugin model that keeps PyTorch's default initialisation (no seeding of its own) must get the
same weights twice for the same seed, whatever the global RNG held before the build.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
import torch
from torch import nn

from vpr_bench import MethodSpec, ModelSpec, TrainerSpec, hookimpl
from vpr_bench.data.synthcity import prepare
from vpr_bench.experiment import resolve_experiment
from vpr_bench.pipeline.eval_request import EvalRequest, run_request
from vpr_bench.pipeline.execute import build_model
from vpr_bench.pipeline.plan import MethodPlan
from vpr_bench.plugins import PluginManager
from vpr_bench.registry import Registries
from vpr_bench.train.api import TrainingData, train_method
from vpr_bench.train.context import TrainContext, TrainOutcome

BUILT: list[dict[str, torch.Tensor]] = []
"""The initial weights of every model the builder below made, in order."""


@dataclass
class DefaultInitConfig:
    """Options of the default-initialised model (none)."""


class DefaultInit(nn.Module):
    """A linear layer on mean colours, initialised by PyTorch's defaults (the global RNG)."""

    descriptor_dim = 8

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(3, 8)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.proj(images.mean(dim=(2, 3))), dim=1)


def build_default_init(config: DefaultInitConfig) -> DefaultInit:
    model = DefaultInit()
    BUILT.append({k: v.clone() for k, v in model.state_dict().items()})
    return model


def fit_nothing(ctx: TrainContext) -> TrainOutcome:
    return TrainOutcome(run_dir=ctx.run_dir, best_checkpoint=None, final_checkpoint=None)


@hookimpl
def vpr_bench_models() -> Any:
    yield ModelSpec(
        name="default-init",
        build=build_default_init,
        config_cls=DefaultInitConfig,
        summary="PyTorch default initialisation",
        leaderboard=False,
    )


@hookimpl
def vpr_bench_trainers() -> Any:
    yield TrainerSpec(name="fit-nothing", fit=fit_nothing, config_cls="vpr_bench.train:LoopConfig")


@hookimpl
def vpr_bench_methods() -> Any:
    yield MethodSpec(
        name="default-init-method",
        model="default-init",
        loss="triplet",
        trainer="fit-nothing",
        train_dataset="synthcity-train",
        summary="a method whose model seeds nothing itself",
        leaderboard=False,
    )


@pytest.fixture()
def registries() -> Registries:
    BUILT.clear()
    this = sys.modules[__name__]
    return PluginManager(autoload=False, extra=[("default-init", this)]).registries()


def _assert_same_weights(first: dict[str, torch.Tensor], second: dict[str, torch.Tensor]) -> None:
    assert first.keys() == second.keys()
    for key in first:
        assert torch.equal(first[key], second[key]), key


def test_run_builds_the_same_initial_weights_twice(registries: Registries) -> None:
    method = registries.methods.get("default-init-method")
    plan = MethodPlan(method, resolve_experiment(method, registries, extra={"seed": 7}))
    build_model(registries, plan)
    torch.rand(1000)  # whatever ran before must not matter
    build_model(registries, plan)
    _assert_same_weights(*BUILT)
    other = MethodPlan(method, resolve_experiment(method, registries, extra={"seed": 8}))
    build_model(registries, other)
    assert not torch.equal(BUILT[0]["proj.weight"], BUILT[2]["proj.weight"])


def test_training_builds_the_same_initial_weights_twice(
    registries: Registries, tmp_path: Path
) -> None:
    method = registries.methods.get("default-init-method")
    config = resolve_experiment(method, registries, extra={"seed": 7})
    data = TrainingData(dataset="none", root=tmp_path, train_split=cast(Any, None))
    for _ in range(2):
        train_method(method, registries, config, data, runs_dir=tmp_path / "runs")
        torch.rand(1000)
    _assert_same_weights(*BUILT)


def test_eval_builds_the_same_initial_weights_twice(registries: Registries, tmp_path: Path) -> None:
    city = prepare(tmp_path / "data", "tiny", seed=0, progress=False)
    for name in ("default-init-method", "default-init"):
        BUILT.clear()
        for _ in range(2):
            request = EvalRequest(
                name=name,
                dataset="synthcity",
                out_dir=tmp_path / "out",
                data_root=city,
                use_cache=False,
                seed=3,
            )
            run_request(registries, request)
            torch.rand(1000)
        _assert_same_weights(*BUILT)
