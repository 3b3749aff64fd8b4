"""``vpr-bench eval`` by name: resolve a method or model, its weights and a dataset, then evaluate.

The command parses; this module turns names into a model under test and a dataset target, and
hands them to the one job resolver (:func:`vpr_bench.pipeline.jobs.resolve_job`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vpr_bench.errors import UnknownNameError, UsageError
from vpr_bench.eval.job import EvalCandidate, EvalOutputs, EvalSettings
from vpr_bench.registry import Registries, resolve
from vpr_bench.specs import EvaluatorSpec, normalize_name

if TYPE_CHECKING:
    from vpr_bench.eval.predictions import Predictions
    from vpr_bench.eval.write import EvalOutcome

__all__ = ["EvalRequest", "check_output_dirs", "recompute_from_file", "run_request"]


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


def run_request(registries: Registries, request: EvalRequest) -> EvalOutcome | None:
    """Build the named method's (or model's) model, load weights, and evaluate.

    A registered method wins over a model of the same name. A bare model's record uses the
    model name as ``method`` and is kept off leaderboards unless the model allows it.

    Returns:
        The outcome on rank 0; None on other torchrun ranks.

    Raises:
        UnknownNameError: Neither a method nor a model has ``request.name``.
        UsageError: Bad options (device, batch size, grid, protocol), or an output folder
            that is a file or cannot be written (checked before any work starts).
    """
    from vpr_bench.config import to_dict
    from vpr_bench.data.load import SplitLoader, resolve_target
    from vpr_bench.device import resolve_device
    from vpr_bench.experiment import resolve_experiment
    from vpr_bench.pipeline.jobs import evaluate_and_write, plugin_versions, resolve_job
    from vpr_bench.train.setup import build_model_seeded
    from vpr_bench.weights import load_weights_file

    target = resolve_target(
        registries, request.dataset, request.data_root, protocol=request.protocol
    )
    target.require_protocol()
    settings = EvalSettings(
        device=resolve_device(request.device),
        batch_size=request.batch_size,
        num_workers=request.num_workers,
        precision=request.precision,
        use_cache=request.use_cache,
        cache_dir=request.cache_dir,
    )
    outputs = EvalOutputs(
        records_dir=request.records_dir or request.out_dir,
        predictions_dir=request.out_dir,
        save_grid=request.save_grid,
    )
    check_output_dirs(request)  # before extraction, not after it
    method_name: str | None = None
    if request.name in registries.methods:
        method = registries.methods.get(request.name)
        experiment = resolve_experiment(
            method, registries, profile=request.profile, extra={"seed": request.seed}
        )
        model_spec = registries.models.get(method.model)
        model_config, config = experiment.model, experiment.to_dict()
        method_name, trained_on = method.name, method.train_dataset
        leaderboard = method.leaderboard and model_spec.leaderboard
    elif request.name in registries.models:
        if request.profile:
            raise UsageError(f"--profile needs a method; {request.name!r} is a bare model.")
        model_spec = registries.models.get(request.name)
        model_config = resolve(model_spec.config_cls)()
        config = {"model_name": model_spec.name, "model": to_dict(model_config)}
        trained_on, leaderboard = "", model_spec.leaderboard
    else:
        known = set(registries.methods.names()) | set(registries.models.names())
        raise UnknownNameError(
            "method or model", request.name, known, hint="See: vpr-bench list methods."
        )
    model = build_model_seeded(model_spec, model_config, request.seed)
    method_spec = registries.methods.get(method_name) if method_name else None
    weights_sha = (
        load_weights_file(model, request.weights, method=method_spec).sha256
        if request.weights is not None
        else ""
    )
    tag = request.checkpoint_tag or (request.weights.stem if request.weights else "untrained")
    config["weights"] = str(request.weights) if request.weights else ""
    candidate = EvalCandidate(
        model=model,
        model_spec=model_spec,
        method=method_name or model_spec.name,
        checkpoint_tag=normalize_name(tag),
        weights_sha256=weights_sha,
        trained_on=trained_on if request.weights else "",
        profile=request.profile or "",
        config=config,
        seed=request.seed,
        leaderboard=leaderboard,
        plugin_versions=plugin_versions(
            registries, dataset=target.spec.name, model=model_spec.name, method=method_name
        ),
    )
    job = resolve_job(
        registries,
        candidate,
        target,
        SplitLoader(),
        settings=settings,
        outputs=outputs,
        benchmark=request.benchmark,
    )
    return evaluate_and_write(job)


def check_output_dirs(request: EvalRequest) -> None:
    """Check that ``--out`` and ``--records`` can be written, before any work starts.

    Raises:
        UsageError: A folder is a file or cannot be written; the message names the option.
        VprBenchError: Its disk is full.
    """
    from vpr_bench.atomic import check_writable_dir

    check_writable_dir(
        request.out_dir, "--out folder", "Pass a folder you can write to with --out DIR."
    )
    if request.records_dir is not None:
        check_writable_dir(
            request.records_dir,
            "--records folder",
            "Pass a folder you can write to with --records DIR (e.g. leaderboards/records).",
        )


def recompute_from_file(
    registries: Registries, path: Path
) -> tuple[Predictions, Mapping[str, float], Mapping[str, Mapping[str, float]]]:
    """Recompute a predictions file's metrics with the evaluators it was made with.

    Raises:
        UnknownNameError: An evaluator named in the file is not installed.
    """
    from vpr_bench.eval.evaluate import recompute_metrics
    from vpr_bench.eval.predictions import load_predictions

    names = load_predictions(path).meta.get("evaluators", [])
    evaluators: list[EvaluatorSpec] = [registries.evaluators.get(str(n)) for n in names]
    return recompute_metrics(path, evaluators)
