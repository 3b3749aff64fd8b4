"""Carry out a :class:`~vpr_bench.pipeline.plan.RunPlan`: train, fit PCA, evaluate, record.

Per method: build the model once (and run its data-dependent prepare step once), evaluate it
untrained when it is the first method with that model configuration, train it (or load
``--weights``), load the chosen checkpoint into the same model, fit PCA-whitening when the
config asks for it, evaluate and write the record. Every split is read once per run through the
plan's :class:`~vpr_bench.data.load.SplitLoader`.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from vpr_bench.errors import UsageError
from vpr_bench.eval.job import EvalCandidate, EvalOutputs, EvalSettings
from vpr_bench.pipeline.jobs import evaluate_and_write, plugin_versions, resolve_job, tag_of_weights
from vpr_bench.timing import timed

if TYPE_CHECKING:
    from torch import nn

    from vpr_bench.data.split import GeoSplit
    from vpr_bench.eval.write import EvalOutcome
    from vpr_bench.pipeline.plan import MethodPlan, RunPlan
    from vpr_bench.plugins import PluginManager
    from vpr_bench.registry import Registries
    from vpr_bench.train.api import TrainingData
    from vpr_bench.weights import PcaWhitening

__all__ = [
    "build_model",
    "check_output_dirs",
    "evaluate_candidate",
    "execute_plan",
    "fit_pca_for",
    "method_candidate",
]

log = logging.getLogger(__name__)


def execute_plan(manager: PluginManager, plan: RunPlan) -> list[EvalOutcome]:
    """Train (or load) and evaluate every method of ``plan``; the outcomes in order.

    Raises:
        UsageError: An output folder is a file or cannot be written (checked before any
            training or extraction).
        VprBenchError: Whatever training or evaluation raises (data, config, model errors).
    """
    check_output_dirs(plan)
    outcomes: list[EvalOutcome] = []
    seen_baselines: set[str] = set()
    for method_plan in plan.methods:
        if plan.checkpoint is not None:
            from vpr_bench.pipeline.released import evaluate_released

            outcome = evaluate_released(manager, plan, method_plan, plan.checkpoint)
            produced = [outcome]
        else:
            produced = _train_and_evaluate(manager, plan, method_plan, seen_baselines)
        outcomes.extend(o for o in produced if o is not None)
    return outcomes


def check_output_dirs(plan: RunPlan) -> None:
    """Check that the run's folders can be written before the first method trains.

    ``--runs-dir`` (runs and predictions), the records folder under ``--leaderboards`` and,
    unless ``--no-cache``, the descriptor cache folder (its free space is checked again
    before each extraction, when the sizes are known).

    Raises:
        UsageError: A folder is a file or cannot be written; the message names the option.
        VprBenchError: Its disk is full.
    """
    from vpr_bench.atomic import check_writable_dir

    options = plan.options
    check_writable_dir(
        options.runs_dir, "--runs-dir folder", "Pass a folder you can write to with --runs-dir DIR."
    )
    check_writable_dir(
        options.records_dir,
        "Records folder",
        "Pass a --leaderboards folder you can write to (records go to its records/).",
    )
    if options.use_cache:
        from vpr_bench.eval.cache import default_cache_dir

        check_writable_dir(
            default_cache_dir(),
            "Descriptor cache folder",
            "Point VPR_BENCH_CACHE to a folder you can write to, or pass --no-cache.",
        )


def build_model(registries: Registries, method_plan: MethodPlan) -> nn.Module:
    """The plan's model, freshly built from its config after seeding with the run's seed."""
    from vpr_bench.train.setup import build_model_seeded

    spec = registries.models.get(method_plan.method.model)
    return build_model_seeded(spec, method_plan.config.model, method_plan.config.seed)


def evaluate_candidate(
    manager: PluginManager, plan: RunPlan, candidate: EvalCandidate
) -> EvalOutcome | None:
    """Resolve the job of ``candidate`` on the run's dataset, evaluate it and write it."""
    options = plan.options
    job = resolve_job(
        manager.registries(),
        candidate,
        plan.target,
        plan.splits,
        settings=EvalSettings(
            device=plan.device, batch_size=options.batch_size, use_cache=options.use_cache
        ),
        outputs=EvalOutputs(
            records_dir=options.records_dir,
            predictions_dir=options.runs_dir / "eval",
            command=options.command or None,
        ),
    )
    return evaluate_and_write(job)


def method_candidate(
    registries: Registries, plan: RunPlan, method_plan: MethodPlan, model: nn.Module
) -> EvalCandidate:
    """The untrained candidate of a method's model; replace its weight fields for trained ones."""
    method, config = method_plan.method, method_plan.config
    model_spec = registries.models.get(method.model)
    return EvalCandidate(
        model=model,
        model_spec=model_spec,
        method=method.name,
        profile=config.profile,
        config=config.to_dict(),
        seed=config.seed,
        leaderboard=method.leaderboard and model_spec.leaderboard,
        plugin_versions=plugin_versions(
            registries, dataset=plan.target.spec.name, model=method.model, method=method.name
        ),
    )


def _training_data(registries: Registries, plan: RunPlan, method_plan: MethodPlan) -> TrainingData:
    from vpr_bench.train.api import load_training_data

    return load_training_data(
        method_plan.method,
        registries,
        method_plan.config,
        data_root=plan.options.train_root,
        splits=plan.splits,
    )


def _train_and_evaluate(
    manager: PluginManager, plan: RunPlan, method_plan: MethodPlan, seen_baselines: set[str]
) -> list[EvalOutcome | None]:
    from vpr_bench.train.api import prepare_model, train_method
    from vpr_bench.weights import load_weights_file

    registries = manager.registries()
    options, method, config = plan.options, method_plan.method, method_plan.config
    model_spec = registries.models.get(method.model)
    model = build_model(registries, method_plan)
    data: TrainingData | None = None
    outcomes: list[EvalOutcome | None] = []
    baseline_key = f"{method.model}:{config.model!r}:seed={config.seed}"
    wants_baseline = options.baseline and baseline_key not in seen_baselines
    trains = options.weights is None
    if model_spec.prepare is not None and (trains or wants_baseline):
        # Data-dependent initialisation (NetVLAD's k-means centroids) is part of the untrained
        # model: the baseline is the model as training starts from it.
        data = _training_data(registries, plan, method_plan)
        prepare_model(model_spec, model, config, data.train_split)
    if wants_baseline:
        seen_baselines.add(baseline_key)
        log.info("Evaluating the untrained %s baseline", method.model)
        baseline = dataclasses.replace(
            method_candidate(registries, plan, method_plan, model), method=method.model
        )
        outcomes.append(evaluate_candidate(manager, plan, baseline))
    if options.weights is not None:
        weights, trained_on = Path(options.weights), options.trained_on
        tag = tag_of_weights(weights)
    else:
        data = data or _training_data(registries, plan, method_plan)
        trained = train_method(
            method,
            registries,
            dataclasses.replace(config, device=str(plan.device)),
            data,
            runs_dir=options.runs_dir,
            model=model,
            emit=manager.emit,
        )
        chosen = trained.best_checkpoint or trained.final_checkpoint
        if chosen is None:
            raise UsageError(f"Training {method.name} produced no checkpoint.")
        weights, tag, trained_on = chosen, trained.run_dir.name, config.train_dataset
    loaded = load_weights_file(model, weights, method=method)
    pca = loaded.pca if config.pca_dim else None  # the file's own PCA (OpenIBL's hub release)
    if pca is not None:
        log.info("PCA-whitening from the weights file %s (not fitted)", Path(weights).name)
    if pca is not None and config.pca_dim and config.pca_dim < pca.n_components:
        pca = pca.truncated(config.pca_dim)
    elif pca is None and config.pca_dim:
        data = data or _training_data(registries, plan, method_plan)
        pca = fit_pca_for(registries, plan, method_plan, model, data.train_split)
    candidate = dataclasses.replace(
        method_candidate(registries, plan, method_plan, model),
        checkpoint_tag=tag,
        weights_sha256=loaded.sha256,
        trained_on=trained_on,
        pca=pca,
    )
    outcomes.append(evaluate_candidate(manager, plan, candidate))
    return outcomes


@timed("pca")
def fit_pca_for(
    registries: Registries,
    plan: RunPlan,
    method_plan: MethodPlan,
    model: nn.Module,
    train_split: GeoSplit,
) -> PcaWhitening | None:
    """Fit PCA-whitening on training descriptors when the config asks for ``pca_dim``.

    Raises:
        UsageError: ``pca_dim`` exceeds what the sampled descriptors can give.
    """
    config = method_plan.config
    if not config.pca_dim:
        return None
    import numpy as np

    from vpr_bench.eval.extract import extract_descriptors, image_domains
    from vpr_bench.weights import fit_pca

    geo = train_split
    records = [*geo.queries, *geo.database]
    rng = np.random.default_rng(config.seed)
    if len(records) > config.pca_samples:
        picked = rng.choice(len(records), size=config.pca_samples, replace=False)
        records = [records[int(i)] for i in sorted(picked)]
    images = [r.path for r in records]
    model_spec = registries.models.get(method_plan.method.model)
    log.info("Fitting PCA-whitening to %d dims on %d images", config.pca_dim, len(images))
    descriptors = extract_descriptors(
        model,
        images,
        model_spec.preprocess.test_policy,
        model_spec.preprocess,
        device=plan.device,
        batch_size=plan.options.batch_size,
        domains=image_domains(records),
    )
    if config.pca_dim > min(descriptors.shape):
        raise UsageError(
            f"pca_dim={config.pca_dim} exceeds what {descriptors.shape[0]} descriptors of "
            f"dimension {descriptors.shape[1]} can give; lower pca_dim or sample more images."
        )
    return fit_pca(descriptors, config.pca_dim)
