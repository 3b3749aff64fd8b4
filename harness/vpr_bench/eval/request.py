"""``vpr-bench eval`` by name: resolve a method or model, its weights and a dataset, then evaluate.

The command parses; this module turns names into objects (through the plugin registries) and
calls :func:`vpr_bench.eval.runner.evaluate`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vpr_bench.errors import UnknownNameError, UsageError
from vpr_bench.registry import Registries, resolve
from vpr_bench.specs import DatasetSpec, EvaluatorSpec, normalize_name

if TYPE_CHECKING:
    from vpr_bench.eval.predictions import Predictions
    from vpr_bench.eval.runner import EvalOutcome

__all__ = ["EvalRequest", "recompute_from_file", "resolve_device", "run_request"]


@dataclass(frozen=True)
class EvalRequest:
    """The options of one ``vpr-bench eval`` call (see the command's ``--help``)."""

    name: str
    dataset: str
    out_dir: Path
    protocol: str | None = None
    weights: Path | None = None
    data_root: Path | None = None
    device: str = "auto"
    batch_size: int = 32
    num_workers: int = 0
    precision: str = "fp32"
    use_cache: bool = True
    cache_dir: Path | None = None
    save_grid: int = 0
    records_dir: Path | None = None
    benchmark: str | None = None
    checkpoint_tag: str | None = None
    profile: str | None = None
    seed: int = 0


def resolve_device(text: str) -> str:
    """``auto`` -> ``cuda`` when available, else ``cpu``; ``cuda`` without CUDA is an error."""
    import torch

    if text == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if text.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"--device {text}: CUDA is not available here; use --device cpu.")
    if text != "cpu" and not text.startswith("cuda"):
        raise UsageError(f"--device must be cpu, cuda, cuda:N or auto, not {text!r}.")
    return text


def _dataset_split(registries: Registries, request: EvalRequest) -> tuple[DatasetSpec, str, Any]:
    dataset, split = registries.dataset_split(request.dataset)
    if request.protocol is None:
        return dataset, split, None
    protocols = registries.protocols()
    key = normalize_name(request.protocol)
    if key not in protocols:
        raise UnknownNameError(
            "protocol", request.protocol, protocols, hint="See: vpr-bench list protocols."
        )
    protocol, owner = protocols[key]
    if owner.name != dataset.name:
        mine = [p.name for p in dataset.protocols]
        raise UsageError(
            f"Protocol {protocol.name} belongs to dataset {owner.name}, not {dataset.name}; "
            f"protocols of {dataset.name}: {', '.join(mine) or 'none'}."
        )
    return dataset, protocol.split, protocol


def _distributions(registries: Registries, pairs: Mapping[str, str]) -> dict[str, str]:
    from vpr_bench.provenance import distribution_versions

    dists = [registries.by_kind(kind).entry(name).distribution for kind, name in pairs.items()]
    return distribution_versions(dists)


def run_request(registries: Registries, request: EvalRequest) -> EvalOutcome | None:
    """Build the named method's (or model's) model, load weights, and evaluate.

    A registered method wins over a model of the same name. A bare model's record uses the
    model name as ``method`` and is kept off leaderboards unless the model allows it.

    Returns:
        The outcome on rank 0; None on other torchrun ranks.

    Raises:
        UnknownNameError: Neither a method nor a model has ``request.name``.
    """
    from vpr_bench.config import to_dict
    from vpr_bench.data.roots import resolve_root
    from vpr_bench.eval.runner import evaluate
    from vpr_bench.experiment import resolve_experiment
    from vpr_bench.weights import load_weights_file

    dataset, split, protocol = _dataset_split(registries, request)
    components: dict[str, str] = {"datasets": dataset.name}
    if request.name in registries.methods:
        method = registries.methods.get(request.name)
        experiment = resolve_experiment(
            method, registries, profile=request.profile, extra={"seed": request.seed}
        )
        model_spec = registries.models.get(method.model)
        model_config, config = experiment.model, experiment.to_dict()
        method_name, trained_on = method.name, method.train_dataset
        leaderboard = method.leaderboard and model_spec.leaderboard
        components.update(methods=method.name, models=model_spec.name)
    elif request.name in registries.models:
        if request.profile:
            raise UsageError(f"--profile needs a method; {request.name!r} is a bare model.")
        model_spec = registries.models.get(request.name)
        model_config = resolve(model_spec.config_cls)()
        config = {"model_name": model_spec.name, "model": to_dict(model_config)}
        method_name, trained_on, leaderboard = model_spec.name, "", model_spec.leaderboard
        components["models"] = model_spec.name
    else:
        known = set(registries.methods.names()) | set(registries.models.names())
        raise UnknownNameError(
            "method or model", request.name, known, hint="See: vpr-bench list methods."
        )
    model = resolve(model_spec.build)(model_config)
    method_spec = registries.methods.get(request.name) if "methods" in components else None
    weights_sha = (
        load_weights_file(model, request.weights, method=method_spec).sha256
        if request.weights is not None
        else ""
    )
    tag = request.checkpoint_tag or (request.weights.stem if request.weights else "untrained")
    config["weights"] = str(request.weights) if request.weights else ""
    return evaluate(
        model,
        method_name=method_name,
        model_spec=model_spec,
        dataset=dataset,
        split=split,
        root=resolve_root(dataset, request.data_root),
        protocol=protocol,
        out_dir=request.out_dir,
        benchmark=request.benchmark or dataset.name,
        checkpoint_tag=normalize_name(tag),
        profile=request.profile or "",
        weights_sha256=weights_sha,
        trained_on=trained_on if request.weights else "",
        config=config,
        seed=request.seed,
        device=resolve_device(request.device),
        leaderboard=leaderboard,
        evaluators=list(registries.evaluators),
        plugin_versions=_distributions(registries, components),
        batch_size=request.batch_size,
        num_workers=request.num_workers,
        precision=request.precision,
        use_cache=request.use_cache,
        cache_dir=request.cache_dir,
        save_grid=request.save_grid,
        records_dir=request.records_dir,
    )


def recompute_from_file(
    registries: Registries, path: Path
) -> tuple[Predictions, Mapping[str, float], Mapping[str, Mapping[str, float]]]:
    """Recompute a predictions file's metrics with the evaluators it was made with.

    Raises:
        UnknownNameError: An evaluator named in the file is not installed.
    """
    from vpr_bench.eval.predictions import load_predictions
    from vpr_bench.eval.runner import recompute_metrics

    names = load_predictions(path).meta.get("evaluators", [])
    evaluators: list[EvaluatorSpec] = [registries.evaluators.get(str(n)) for n in names]
    return recompute_metrics(path, evaluators)
