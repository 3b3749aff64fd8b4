"""The ``domain-views`` batch kind: the kit's batch, its checks, and the registry's pairing."""

from __future__ import annotations

import types
from dataclasses import dataclass
from typing import Any

import pytest
import torch

from vpr_bench import BatchKind, LossSpec, MethodSpec, TrainerSpec, hookimpl
from vpr_bench.errors import IncompatibleError
from vpr_bench.registry import resolve
from vpr_bench.testing import LossConformance, isolated_manager
from vpr_bench.testing.conformance import make_loss_batch


@dataclass
class ViewsConfig:
    """Options of the toy loss.

    Attributes:
        temperature: Softmax temperature.
    """

    temperature: float = 0.5


class ToyViews(torch.nn.Module):
    """In-batch InfoNCE between view 0 and each other view (a 3-view toy)."""

    n_views = 3

    def __init__(self, cfg: ViewsConfig) -> None:
        super().__init__()
        self.temperature = cfg.temperature

    def forward(self, views: torch.Tensor) -> torch.Tensor:
        assert views.shape[1] == self.n_views
        target = torch.arange(views.shape[0])
        terms = [
            torch.nn.functional.cross_entropy(
                views[:, 0] @ views[:, v].T / self.temperature, target
            )
            for v in range(1, self.n_views)
        ]
        return torch.stack(terms).sum()


class Undeclared(ToyViews):
    """The same loss without ``n_views``."""

    n_views = None  # type: ignore[assignment]


def _no_fit(ctx: Any) -> Any:
    raise AssertionError("never trained here")


def _manager(name: str, build: Any) -> Any:
    module = types.ModuleType(f"test_views_loss_{name}")

    @hookimpl
    def vpr_bench_losses() -> Any:
        yield LossSpec(name, build=build, config_cls=ViewsConfig, batch_kind="domain-views")

    @hookimpl
    def vpr_bench_trainers() -> Any:
        yield TrainerSpec("toy-views-trainer", fit=_no_fit, batch_kinds=("domain-views",))

    @hookimpl
    def vpr_bench_methods() -> Any:
        for trainer in ("domain-pairs", "toy-views-trainer"):
            yield MethodSpec(
                f"{name}-{trainer}",
                model="tiny-gem",
                loss=name,
                trainer=trainer,
                train_dataset="synthcity",
            )

    module.vpr_bench_losses = vpr_bench_losses  # type: ignore[attr-defined]
    module.vpr_bench_trainers = vpr_bench_trainers  # type: ignore[attr-defined]
    module.vpr_bench_methods = vpr_bench_methods  # type: ignore[attr-defined]
    return isolated_manager([module])


def test_the_batch_holds_n_views_unit_views_per_item() -> None:
    (views,) = make_loss_batch(BatchKind.DOMAIN_VIEWS, torch.Generator().manual_seed(0), n_views=4)
    assert isinstance(views, torch.Tensor) and views.ndim == 3 and views.shape[1:] == (4, 16)
    assert views.requires_grad
    torch.testing.assert_close(views.norm(dim=-1), torch.ones(views.shape[:2]).double())
    with pytest.raises(ValueError, match="n_views >= 1"):
        make_loss_batch(BatchKind.DOMAIN_VIEWS, torch.Generator(), n_views=0)


def test_a_domain_views_loss_passes_the_kit_with_its_own_view_count() -> None:
    spec = _manager("toy-views", ToyViews).registries().losses.get("toy-views")
    assert spec.batch_kind is BatchKind.DOMAIN_VIEWS
    kit = LossConformance()
    (views,) = kit.batch(spec)
    assert isinstance(views, torch.Tensor) and views.shape[1] == 3
    loss = resolve(spec.build)(ViewsConfig())
    kit.test_finite_scalar(spec, loss)
    kit.test_differentiable(spec, loss)
    kit.test_decreases_when_optimised(spec, loss)
    with pytest.raises(pytest.skip.Exception, match="interact by design"):
        kit.test_tuples_are_independent(spec, loss)


def test_a_loss_without_n_views_fails_the_kit() -> None:
    spec = _manager("no-views", Undeclared).registries().losses.get("no-views")
    with pytest.raises(AssertionError, match="declares no n_views"):
        LossConformance().batch(spec)


def test_a_domain_views_method_needs_its_trainer_and_paired_renders() -> None:
    registries = _manager("toy-views", ToyViews).registries()
    wrong_trainer = registries.methods.get("toy-views-domain-pairs")
    with pytest.raises(IncompatibleError, match="trainer 'domain-pairs' produces domain-pairs"):
        registries.check_method(wrong_trainer)
    method = registries.methods.get("toy-views-toy-views-trainer")
    registries.check_method(method)  # synthcity has paired renders
    with pytest.raises(IncompatibleError, match="no paired renders. Datasets that fit: synthcity"):
        registries.check_method(method, "pitts30k")
