"""``vpr-bench run --checkpoint TAG``: evaluate a method's released weights, model-zoo style.

The model is built with the checkpoint's overrides, the file is found and verified
(:mod:`vpr_bench.checkpoints`) and loaded by the checkpoint's own loader. PCA-whitening comes,
in this order, from the file itself (OpenIBL's hub release folds it in), from
``pca_params_<name>.h5`` beside the file (the name OpenIBL's ``test.py`` writes and reuses), or
is fitted on the checkpoint's training set and then saved there for the next run. The record
carries the checkpoint's tag, the file's sha256 and the training set, so the leaderboard
compares it with the numbers the authors report for these weights.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from vpr_bench.registry import resolve

if TYPE_CHECKING:
    from torch import nn

    from vpr_bench.eval.runner import EvalOutcome
    from vpr_bench.pipeline import Plan, RunOptions
    from vpr_bench.plugins import PluginManager
    from vpr_bench.specs import Checkpoint, DatasetSpec
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
    manager: PluginManager,
    plan: Plan,
    checkpoint: Checkpoint,
    options: RunOptions,
    device: str,
    eval_spec: DatasetSpec,
    eval_root: Path,
) -> EvalOutcome | None:
    """Load the released weights of ``checkpoint`` into the plan's model and evaluate them.

    Raises:
        DataError: The file is missing (the message says where to get it and put it), its
            sha256 differs from the published one, or it does not fit the model.
    """
    from vpr_bench.pipeline import build_model, evaluate_model
    from vpr_bench.weights import load_state_file, locate_checkpoint, verify_checkpoint

    path = locate_checkpoint(
        plan.method, checkpoint, options.weights, allow_download=options.download
    )
    sha = verify_checkpoint(path, checkpoint)  # hashes the file once, before anything loads
    model = build_model(manager, plan)
    pca: PcaWhitening | None = None
    if checkpoint.load is None:
        load_state_file(model, path)
    else:
        pca = resolve(checkpoint.load)(path, model)
    pca_dim = plan.config.pca_dim
    if not pca_dim:
        if pca is not None:
            log.info("pca_dim is unset: the PCA stored in %s is not applied", path.name)
        pca = None
    elif pca is None:
        pca = _pca_beside(manager, plan, model, options, device, path)
    elif pca_dim < pca.n_components:
        pca = pca.truncated(pca_dim)
    log.info("evaluating checkpoint %s (%s, sha256 %s)", checkpoint.tag, path, sha[:16])
    return evaluate_model(
        manager,
        plan,
        model,
        options,
        device,
        eval_spec,
        eval_root,
        method_name=plan.method.name,
        checkpoint_tag=checkpoint.tag,
        weights_sha256=sha,
        trained_on=checkpoint.trained_on,
        pca=pca,
    )


def _pca_beside(
    manager: PluginManager,
    plan: Plan,
    model: nn.Module,
    options: RunOptions,
    device: str,
    weights: Path,
) -> PcaWhitening | None:
    """Reuse ``pca_params_<name>.h5`` beside the weights, or fit it and save it there."""
    from vpr_bench.pipeline import fit_pca_for
    from vpr_bench.weights import PcaWhitening

    stored = pca_file_for(weights)
    if stored.is_file():
        log.info("PCA-whitening from %s (delete it to fit again)", stored)
        return PcaWhitening.load_h5(stored, n_components=plan.config.pca_dim)
    pca = fit_pca_for(manager, plan, model, options, device)
    if pca is not None:
        try:
            pca.save_h5(stored)
            log.info("PCA-whitening saved to %s; later runs reuse it", stored)
        except OSError as exc:
            log.warning("PCA-whitening not saved beside the weights (%s)", exc)
    return pca
