"""Every hook spec documents a complete example plugin, and the example really works."""

from __future__ import annotations

import inspect
import re
import sys
import textwrap
import types
from pathlib import Path

import pytest

from vpr_bench import hookspecs
from vpr_bench.runtime import RunEvent
from vpr_bench.testing import isolated_manager

HOOKS = sorted(
    name for name, fn in vars(hookspecs).items() if name.startswith("vpr_bench_") and callable(fn)
)


def _example(hook: str) -> str:
    doc = inspect.getdoc(getattr(hookspecs, hook)) or ""
    match = re.search(r"Example::\n\n(.*)", doc, flags=re.S)
    assert match, f"{hook} has no 'Example::' block in its docstring"
    return textwrap.dedent(match.group(1))


def _load_example(hook: str) -> types.ModuleType:
    module = types.ModuleType(f"example_{hook}")
    sys.modules[module.__name__] = module  # dataclasses defined in the example need it
    exec(compile(_example(hook), f"<{hook} example>", "exec"), module.__dict__)
    return module


def test_every_hook_name_has_the_prefix_and_a_docstring() -> None:
    assert set(HOOKS) >= {"vpr_bench_models", "vpr_bench_run_event", "vpr_bench_fetch"}
    for hook in HOOKS:
        assert (inspect.getdoc(getattr(hookspecs, hook)) or "").strip(), hook


@pytest.mark.parametrize("hook", sorted(hookspecs.REGISTRATION_HOOKS))
def test_registration_examples_register_valid_specs(hook: str) -> None:
    module = _load_example(hook)
    manager = isolated_manager([module])
    registries = manager.registries()
    kind = hookspecs.REGISTRATION_HOOKS[hook]
    provided = [e for e in registries.by_kind(kind).entries() if e.plugin == module.__name__]
    assert len(provided) == 1, f"the {hook} example registers nothing"


def test_run_event_example_observes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = _example("vpr_bench_run_event").replace("/tmp/epochs.jsonl", str(tmp_path / "e.jsonl"))
    module = types.ModuleType("example_events")
    exec(compile(source, "<run_event example>", "exec"), module.__dict__)
    manager = isolated_manager([module])
    manager.emit(RunEvent("epoch-ended", "run-1", {"loss": 0.5}))
    assert (tmp_path / "e.jsonl").read_text() == '{"run": "run-1", "loss": 0.5}\n'


def test_fetch_example_copies(tmp_path: Path) -> None:
    source = _example("vpr_bench_fetch").replace('"/mnt/lab-share"', repr(str(tmp_path / "share")))
    module = types.ModuleType("example_fetch")
    exec(compile(source, "<fetch example>", "exec"), module.__dict__)
    (tmp_path / "share").mkdir()
    (tmp_path / "share" / "w.pth").write_bytes(b"weights")
    manager = isolated_manager([module])
    dest = tmp_path / "out" / "w.pth"
    assert manager.fetch("lab://w.pth", dest) == dest and dest.read_bytes() == b"weights"
    assert manager.fetch("https://example.org/w.pth", tmp_path / "x") is None


def test_every_hook_is_exercised_by_a_test() -> None:
    tests_dir = Path(__file__).parent
    text = "\n".join(p.read_text() for p in tests_dir.rglob("test_*.py") if p.name != __file__)
    for hook in HOOKS:
        short = hook.removeprefix("vpr_bench_")
        assert hook in text or f'"{short}"' in text or "REGISTRATION_HOOKS" in text, hook


def test_trainer_example_trains_a_method_through_the_public_api(tmp_path: Path) -> None:
    """The custom trainer of the trainer hook's docstring trains tiny-gem on synthcity tiny."""
    from vpr_bench import MethodSpec, hookimpl, resolve_experiment
    from vpr_bench.data.synthcity import prepare
    from vpr_bench.train import TrainOutcome, load_training_data, train_method

    example = _load_example("vpr_bench_trainers")
    method_module = types.ModuleType("example_near_far_method")

    @hookimpl
    def vpr_bench_methods():  # type: ignore[no-untyped-def]
        yield MethodSpec(
            name="tiny-near-far",
            model="tiny-gem",
            loss="triplet",
            trainer="near-far",
            train_dataset="synthcity-train",
            summary="tiny-gem trained by the near-far example trainer",
        )

    method_module.vpr_bench_methods = vpr_bench_methods  # type: ignore[attr-defined]
    registries = isolated_manager([example, method_module]).registries()
    method = registries.methods.get("tiny-near-far")
    config = resolve_experiment(
        method,
        registries,
        sets=["trainer.epochs=1", "trainer.far_m=40", "trainer.val_every=0", "device=cpu"],
    )
    assert config.trainer.far_m == 40.0 and type(config.trainer).__name__ == "NearFarConfig"
    city = prepare(tmp_path / "data", "tiny", seed=0, progress=False)
    data = load_training_data(method, registries, config, data_root=city)
    outcome = train_method(method, registries, config, data, runs_dir=tmp_path / "runs")
    assert isinstance(outcome, TrainOutcome) and outcome.final_checkpoint is not None
    assert outcome.final_checkpoint.is_file()
    (epoch,) = outcome.history
    assert 0.0 < epoch["loss"] < 1.0  # the triplet loss of real tuples, margin sqrt(0.1)


def test_loss_example_passes_the_loss_kit() -> None:
    """The loss hook's example compares each anchor with its own tuple only (the kit checks)."""
    from vpr_bench.registry import resolve
    from vpr_bench.testing import LossConformance

    spec = (
        isolated_manager([_load_example("vpr_bench_losses")]).registries().losses.get("contrastive")
    )
    kit = LossConformance()
    for check in (
        kit.test_finite_scalar,
        kit.test_differentiable,
        kit.test_tuples_are_independent,
        kit.test_decreases_when_optimised,
    ):
        check(spec, resolve(spec.build)(resolve(spec.config_cls)()))


def test_method_example_profiles_resolve() -> None:
    """Every profile of the method hook's example resolves (its keys are real config keys)."""
    from vpr_bench import resolve_experiment

    registries = isolated_manager([_load_example("vpr_bench_methods")]).registries()
    method = registries.methods.get("my-tiny-triplet")
    assert method.profiles
    for profile in method.profiles:
        config = resolve_experiment(method, registries, profile=profile)
        assert config.profile == profile


def test_model_example_passes_the_model_kit() -> None:
    """The model hook's example builds a model that passes the model conformance checks."""
    from vpr_bench.registry import resolve
    from vpr_bench.testing import ModelConformance

    spec = (
        isolated_manager([_load_example("vpr_bench_models")]).registries().models.get("mean-colour")
    )
    kit = ModelConformance()
    for check in (
        kit.test_descriptor_shape_dtype_and_dim,
        kit.test_descriptors_are_unit_norm,
        kit.test_batch_independence,
        kit.test_gradients_reach_trainable_parameters,
    ):
        check(resolve(spec.build)(resolve(spec.config_cls)()).eval())
    kit.test_state_dict_round_trip(spec, resolve(spec.build)(resolve(spec.config_cls)()).eval())


def test_dataset_example_loads_a_folder(tmp_path: Path) -> None:
    """The dataset hook's example reads images named by metre mark into a split."""
    example = _load_example("vpr_bench_datasets")
    spec = isolated_manager([example]).registries().datasets.get("corridor-line")
    for folder, marks in (("db", (0, 5, 10)), ("q", (1, 9))):
        (tmp_path / folder).mkdir()
        for mark in marks:
            (tmp_path / folder / f"{mark}.jpg").write_bytes(b"")
    split = example.load(tmp_path, "test")
    assert sorted(r.easting for r in split.database) == [0.0, 5.0, 10.0]
    assert sorted(r.easting for r in split.queries) == [1.0, 9.0]
    assert spec.protocol_for("test") is example.PROTOCOL


def test_evaluator_example_computes_its_metric() -> None:
    """The evaluator hook's example computes the mean top-1 distance of a kNN result."""
    import numpy as np

    example = _load_example("vpr_bench_evaluators")
    result = types.SimpleNamespace(knn_dist=np.array([[1.0, 2.0], [3.0, 4.0]]))
    assert example.top1_distance(result, None) == {"mean-top1-dist": 2.0}
