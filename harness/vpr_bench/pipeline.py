"""``vpr-bench run``: train what has no weights, fit PCA, evaluate, write records, refresh boards.

Every method's parts and config are checked before any heavy work, so a bad name fails in a
second rather than after an hour of training. Per method: train (or load ``--weights``), fit
PCA-whitening when the config asks for it, evaluate on the requested dataset under its protocol
and write the record. An untrained baseline is evaluated once per distinct model configuration.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vpr_bench.errors import UnknownNameError, UsageError
from vpr_bench.experiment import ExperimentConfig, resolve_experiment
from vpr_bench.registry import resolve
from vpr_bench.specs import Checkpoint, DatasetSpec, MethodSpec

if TYPE_CHECKING:
    from torch import nn

    from vpr_bench.eval.runner import EvalOutcome
    from vpr_bench.plugins import PluginManager
    from vpr_bench.weights import PcaWhitening

__all__ = [
    "Plan",
    "RunOptions",
    "build_model",
    "evaluate_model",
    "fit_pca_for",
    "run_methods",
    "select_methods",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOptions:
    """Options of ``vpr-bench run`` shared by every method.

    Attributes:
        dataset: ``--dataset`` name of the evaluation set.
        data_root: Root of the evaluation dataset (None: ``VPR_BENCH_DATA`` or its default).
        train_root: Root of the training dataset (None: likewise).
        profile: Config profile of every method (None: defaults).
        config_file: TOML config applied to every method.
        sets: ``--set`` overrides applied to every method.
        weights: Weights file to evaluate instead of training (one method only).
        trained_on: With ``weights``: the dataset they were trained on (recorded; ``""``:
            unknown).
        records_dir: Where records go.
        runs_dir: Where training runs, predictions and grids go.
        device: ``auto``, ``cpu`` or ``cuda``.
        seed: Overrides the config's seed when given.
        baseline: Also evaluate the untrained model of each distinct model config.
        batch_size: Extraction batch size.
        use_cache: Use the descriptor cache.
        command: The command line recorded in every record.
        checkpoint: Tag of released weights to evaluate (``--checkpoint``): only the method
            that releases it runs, with the checkpoint's config overrides, no training and no
            baseline; ``weights`` may name the downloaded file.
        download: With ``checkpoint``: fetch the file when it is a direct link and not here.
    """

    dataset: str
    data_root: Path | None = None
    train_root: Path | None = None
    profile: str | None = None
    config_file: Path | None = None
    sets: Sequence[str] = ()
    weights: Path | None = None
    trained_on: str = ""
    records_dir: Path = Path("leaderboards/records")
    runs_dir: Path = Path("runs")
    device: str = "auto"
    seed: int | None = None
    baseline: bool = True
    batch_size: int = 32
    use_cache: bool = True
    command: str = ""
    checkpoint: str | None = None
    download: bool = False


def select_methods(
    manager: PluginManager, names: Sequence[str] | None, allow: Sequence[str] | None
) -> list[MethodSpec]:
    """The methods to run: those named, else every method of the allowed entry-point plugins.

    Raises:
        UnknownNameError: A named method is not registered.
        UsageError: Nothing to run.
    """
    registries = manager.registries()
    if names:
        return [registries.methods.get(name) for name in names]
    allowed = set(allow or [])
    chosen = [
        entry.spec
        for entry in registries.methods.entries()
        if entry.spec.leaderboard and (entry.plugin in allowed if allowed else True)
    ]
    if not chosen:
        raise UsageError(
            "No method to run: name some with --methods, or load method plugins with "
            "--plugins (see: vpr-bench list methods)."
        )
    return chosen


@dataclass
class Plan:
    """One method to run and its fully resolved config."""

    method: MethodSpec
    config: ExperimentConfig


def run_methods(
    manager: PluginManager, methods: Sequence[MethodSpec], options: RunOptions
) -> list[EvalOutcome]:
    """Train (or load) and evaluate every method; return the evaluation outcomes in order.

    Raises:
        UnknownNameError, IncompatibleError, ConfigError: Before any heavy work.
        UsageError: ``--weights`` with several methods.
    """
    from vpr_bench.train.api import resolve_device

    registries = manager.registries()
    checkpoint: Checkpoint | None = None
    if options.checkpoint:
        from vpr_bench.weights import find_checkpoint

        try:
            owner, checkpoint = find_checkpoint(methods, options.checkpoint)
        except UnknownNameError:
            elsewhere = [
                entry.spec.name
                for entry in registries.methods.entries()
                if any(c.tag == options.checkpoint for c in entry.spec.checkpoints)
            ]
            if not elsewhere:
                raise
            raise UsageError(
                f"Checkpoint {options.checkpoint!r} is released by method {elsewhere[0]!r}, "
                f"which is not among this run's methods ({', '.join(m.name for m in methods)}); "
                f"run it with --methods {elsewhere[0]}."
            ) from None
        methods = [owner]
    if options.weights is not None and len(methods) != 1:
        raise UsageError("--weights needs exactly one method (choose it with --methods NAME).")
    eval_spec, eval_split = registries.dataset_split(options.dataset)
    if eval_spec.protocol_for(eval_split) is None:
        raise UsageError(
            f"Dataset {options.dataset} (split {eval_split}) has no evaluation protocol; "
            f"evaluate a split that has one (see: vpr-bench list protocols)."
        )
    extra: dict[str, Any] = {} if options.seed is None else {"seed": options.seed}
    plans = []
    layers = []
    if checkpoint is not None:
        needs = {**checkpoint.overrides, "train_dataset": checkpoint.trained_on}
        layers.append((f"checkpoint {checkpoint.tag!r}", needs))
    for method in methods:
        config = resolve_experiment(
            method,
            registries,
            profile=options.profile,
            config_file=options.config_file,
            sets=options.sets,
            extra=extra,
            layers=layers,
        )
        if checkpoint is None and options.weights is None:
            registries.check_method(method, config.train_dataset)
        plans.append(Plan(method, config))
    device = resolve_device(options.device)
    eval_root = _dataset_root(eval_spec, options.data_root)
    outcomes: list[EvalOutcome] = []
    seen_baselines: set[str] = set()
    for plan in plans:
        if checkpoint is not None:
            from vpr_bench.released import evaluate_released

            outcome = evaluate_released(
                manager, plan, checkpoint, options, device, eval_spec, eval_root
            )
            if outcome is not None:
                outcomes.append(outcome)
            continue
        if options.baseline:
            key = f"{plan.method.model}:{plan.config.model!r}"
            if key not in seen_baselines:
                seen_baselines.add(key)
                outcome = _evaluate_untrained(manager, plan, options, device, eval_spec, eval_root)
                if outcome is not None:
                    outcomes.append(outcome)
        outcome = _train_and_evaluate(manager, plan, options, device, eval_spec, eval_root)
        if outcome is not None:
            outcomes.append(outcome)
    return outcomes


def _dataset_root(spec: DatasetSpec, root: Path | None) -> Path:
    from vpr_bench.data.roots import resolve_root

    return resolve_root(spec, root)


def _train_split(manager: PluginManager, plan: Plan, options: RunOptions) -> Any:
    """The method's training split (for data-dependent init and PCA fitting)."""
    spec, split = manager.registries().dataset_split(plan.config.train_dataset)
    return resolve(spec.load)(_dataset_root(spec, options.train_root), split)


def build_model(manager: PluginManager, plan: Plan) -> nn.Module:
    """The plan's model, freshly built from its config (random or pretrained-trunk init)."""
    spec = manager.registries().models.get(plan.method.model)
    model: nn.Module = resolve(spec.build)(plan.config.model)
    return model


def evaluate_model(
    manager: PluginManager,
    plan: Plan,
    model: nn.Module,
    options: RunOptions,
    device: str,
    eval_spec: DatasetSpec,
    eval_root: Path,
    *,
    method_name: str,
    checkpoint_tag: str,
    weights_sha256: str,
    trained_on: str,
    pca: PcaWhitening | None,
) -> EvalOutcome | None:
    """Evaluate ``model`` on the run's dataset and write its record (None on other ranks)."""
    from vpr_bench.eval.runner import evaluate
    from vpr_bench.provenance import distribution_versions

    registries = manager.registries()
    model_spec = registries.models.get(plan.method.model)
    plugins = {registries.methods.entry(plan.method.name).distribution}
    plugins.add(registries.models.entry(plan.method.model).distribution)
    _, split = registries.dataset_split(options.dataset)
    return evaluate(
        model,
        method_name=method_name,
        model_spec=model_spec,
        dataset=eval_spec,
        split=split,
        root=eval_root,
        out_dir=options.runs_dir / "eval",
        records_dir=options.records_dir,
        benchmark=eval_spec.name,
        checkpoint_tag=checkpoint_tag,
        weights_sha256=weights_sha256,
        trained_on=trained_on,
        evaluators=list(registries.evaluators),
        profile=plan.config.profile,
        config=plan.config.to_dict(),
        seed=plan.config.seed,
        device=device,
        pca=pca,
        leaderboard=plan.method.leaderboard and model_spec.leaderboard,
        plugin_versions=distribution_versions(sorted(plugins)),
        batch_size=options.batch_size,
        use_cache=options.use_cache,
        command=options.command or None,
    )


def _evaluate_untrained(
    manager: PluginManager,
    plan: Plan,
    options: RunOptions,
    device: str,
    eval_spec: DatasetSpec,
    eval_root: Path,
) -> EvalOutcome | None:
    log.info("Evaluating the untrained %s baseline", plan.method.model)
    model = build_model(manager, plan)
    model_spec = manager.registries().models.get(plan.method.model)
    if model_spec.prepare is not None:
        # Data-dependent initialisation (NetVLAD's k-means centroids) is part of the untrained
        # model: the baseline is the model as training would start from it.
        from vpr_bench.train.api import prepare_model

        prepare_model(model_spec, model, plan.config, _train_split(manager, plan, options))
    return evaluate_model(
        manager,
        plan,
        model,
        options,
        device,
        eval_spec,
        eval_root,
        method_name=plan.method.model,
        checkpoint_tag="untrained",
        weights_sha256="",
        trained_on="",
        pca=None,
    )


def _train_and_evaluate(
    manager: PluginManager,
    plan: Plan,
    options: RunOptions,
    device: str,
    eval_spec: DatasetSpec,
    eval_root: Path,
) -> EvalOutcome | None:
    from vpr_bench.train.api import train_method
    from vpr_bench.weights import load_weights_file

    model = build_model(manager, plan)
    if options.weights is not None:
        weights, trained_on = Path(options.weights), options.trained_on
        tag = weights.parent.parent.name if weights.parent.name == "checkpoints" else weights.stem
    else:
        outcome = train_method(
            plan.method,
            manager.registries(),
            data_root=options.train_root,
            profile=options.profile,
            config_file=options.config_file,
            sets=options.sets,
            runs_dir=options.runs_dir,
            device=device,
            seed=options.seed,
            emit=manager.emit,
        )
        chosen = outcome.best_checkpoint or outcome.final_checkpoint
        if chosen is None:
            raise UsageError(f"Training {plan.method.name} produced no checkpoint.")
        weights, tag, trained_on = chosen, outcome.run_dir.name, plan.config.train_dataset
    loaded = load_weights_file(model, weights, method=plan.method)
    sha, pca_dim, pca = loaded.sha256, plan.config.pca_dim, loaded.pca
    if loaded.pca is not None and pca_dim:  # the file's own PCA (OpenIBL's hub release)
        pca = loaded.pca.truncated(pca_dim) if pca_dim < loaded.pca.n_components else loaded.pca
    else:
        pca = fit_pca_for(manager, plan, model, options, device)
    return evaluate_model(
        manager,
        plan,
        model,
        options,
        device,
        eval_spec,
        eval_root,
        method_name=plan.method.name,
        checkpoint_tag=tag,
        weights_sha256=sha,
        trained_on=trained_on,
        pca=pca,
    )


def fit_pca_for(
    manager: PluginManager, plan: Plan, model: nn.Module, options: RunOptions, device: str
) -> PcaWhitening | None:
    """Fit PCA-whitening on training descriptors when the config asks for ``pca_dim``."""
    if not plan.config.pca_dim:
        return None
    import numpy as np

    from vpr_bench.eval.extract import extract_descriptors
    from vpr_bench.weights import fit_pca

    registries = manager.registries()
    geo = _train_split(manager, plan, options)
    images = [r.path for r in (*geo.queries, *geo.database)]
    rng = np.random.default_rng(plan.config.seed)
    if len(images) > plan.config.pca_samples:
        picked = rng.choice(len(images), size=plan.config.pca_samples, replace=False)
        images = [images[int(i)] for i in sorted(picked)]
    model_spec = registries.models.get(plan.method.model)
    log.info("Fitting PCA-whitening to %d dims on %d images", plan.config.pca_dim, len(images))
    descriptors = extract_descriptors(
        model,
        images,
        model_spec.preprocess.test_policy,
        model_spec.preprocess,
        device=device,
        batch_size=options.batch_size,
    )
    if plan.config.pca_dim > min(descriptors.shape):
        raise UsageError(
            f"pca_dim={plan.config.pca_dim} exceeds what {descriptors.shape[0]} descriptors of "
            f"dimension {descriptors.shape[1]} can give; lower pca_dim or sample more images."
        )
    return fit_pca(descriptors, plan.config.pca_dim)
