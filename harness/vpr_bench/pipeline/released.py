"""``vpr-bench run --checkpoint TAG``: evaluate a method's released weights, model-zoo style.

The model is built with the checkpoint's overrides, the file is found and verified
(:mod:`vpr_bench.weights.released`) and loaded by the checkpoint's own loader. PCA-whitening comes,
in this order, from the file itself (OpenIBL's hub release folds it in), from
``pca_params_<name>.h5`` beside the file (the name OpenIBL's ``test.py`` writes and reuses), or
is fitted on the checkpoint's training set and then saved there for the next run. The record
carries the checkpoint's tag, the file's sha256 and the training set, so the leaderboard
compares it with the numbers the authors report for these weights.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from vpr_bench.registry import resolve

if TYPE_CHECKING:
    from torch import nn

    from vpr_bench.eval.write import EvalOutcome
    from vpr_bench.pipeline.plan import MethodPlan, RunPlan
    from vpr_bench.plugins import PluginManager
    from vpr_bench.registry import Registries
    from vpr_bench.specs import Checkpoint
    from vpr_bench.weights import PcaWhitening

__all__ = ["evaluate_released", "pca_file_for"]

log = logging.getLogger(__name__)


def pca_file_for(weights: Path) -> Path:
    """``pca_params_<name>.h5`` beside ``weights`` (``model_best.pth.tar`` -> ``model_best``)."""
    name = weights.name
    for suffix in (".tar", ".pth", ".pt", ".ckpt"):
        name = name.removesuffix(suffix)
    return weights.parent / f"pca_params_{name}.h5"


def evaluate_released(
    manager: PluginManager, plan: RunPlan, method_plan: MethodPlan, checkpoint: Checkpoint
) -> EvalOutcome | None:
    """Load the released weights of ``checkpoint`` into the plan's model and evaluate them.

    Raises:
        DataError: The file is missing (the message says where to get it and put it), its
            sha256 differs from the published one, or it does not fit the model.
    """
    from vpr_bench.pipeline.execute import build_model, evaluate_candidate, method_candidate
    from vpr_bench.weights import load_state_file, locate_checkpoint, verify_checkpoint

    registries = manager.registries()
    options = plan.options
    path = locate_checkpoint(
        method_plan.method, checkpoint, options.weights, allow_download=options.download
    )
    sha = verify_checkpoint(path, checkpoint)  # hashes the file once, before anything loads
    model = build_model(registries, method_plan)
    pca: PcaWhitening | None = None
    if checkpoint.load is None:
        load_state_file(model, path)
    else:
        pca = resolve(checkpoint.load)(path, model)
    pca_dim = method_plan.config.pca_dim
    if not pca_dim:
        if pca is not None:
            log.info("pca_dim is unset: the PCA stored in %s is not applied", path.name)
        pca = None
    elif pca is None:
        pca = _pca_beside(registries, plan, method_plan, model, path)
    elif pca_dim < pca.n_components:
        pca = pca.truncated(pca_dim)
    log.info("evaluating checkpoint %s (%s, sha256 %s)", checkpoint.tag, path, sha[:16])
    candidate = dataclasses.replace(
        method_candidate(registries, plan, method_plan, model),
        checkpoint_tag=checkpoint.tag,
        weights_sha256=sha,
        trained_on=checkpoint.trained_on,
        pca=pca,
    )
    return evaluate_candidate(manager, plan, candidate)


def _pca_beside(
    registries: Registries,
    plan: RunPlan,
    method_plan: MethodPlan,
    model: nn.Module,
    weights: Path,
) -> PcaWhitening | None:
    """Reuse ``pca_params_<name>.h5`` beside the weights, or fit it and save it there."""
    from vpr_bench.pipeline.execute import fit_pca_for
    from vpr_bench.train.api import load_training_data
    from vpr_bench.weights import PcaWhitening

    stored = pca_file_for(weights)
    if stored.is_file():
        log.info("PCA-whitening from %s (delete it to fit again)", stored)
        return PcaWhitening.load_h5(stored, n_components=method_plan.config.pca_dim)
    data = load_training_data(
        method_plan.method,
        registries,
        method_plan.config,
        data_root=plan.options.train_root,
        splits=plan.splits,
    )
    pca = fit_pca_for(registries, plan, method_plan, model, data.train_split)
    if pca is not None:
        try:
            pca.save_h5(stored)
            log.info("PCA-whitening saved to %s; later runs reuse it", stored)
        except OSError as exc:
            log.warning("PCA-whitening not saved beside the weights (%s)", exc)
    return pca
