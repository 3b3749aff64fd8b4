"""``train_method``: resolve a method's config, load its data, build its parts, run its trainer.

Used by ``vpr-bench train`` and ``vpr-bench run``. A run writes to
``<runs_dir>/<method>/<UTC time>/``: ``config.json`` (the resolved config), ``train.log``,
``events.jsonl`` (JSONL observer), ``checkpoints/{last,best,final}.pt`` (+ ``.json`` sidecars)
and ``summary.json``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vpr_bench.atomic import atomic_write_json
from vpr_bench.errors import DataError, UsageError
from vpr_bench.registry import Registries, resolve
from vpr_bench.runtime import RunEvent
from vpr_bench.specs import BatchKind, DatasetSpec, MethodSpec, ModelSpec
from vpr_bench.train.context import TrainContext, TrainOutcome

__all__ = ["new_run_dir", "prepare_model", "resolve_device", "train_method"]

log = logging.getLogger(__name__)


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when available, else ``cpu``; other values pass through."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def new_run_dir(runs_dir: Path, method: str) -> Path:
    """A fresh ``<runs_dir>/<method>/<UTC time>`` folder (suffixed when the second is taken)."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    base = Path(runs_dir) / method / stamp
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{stamp}-{n}")
    candidate.mkdir(parents=True)
    return candidate


def _root(spec: DatasetSpec, data_root: Path | None) -> Path:
    from vpr_bench.data.roots import resolve_root

    return resolve_root(spec, data_root)


def _pairs(spec: DatasetSpec, root: Path) -> list[Any]:
    if spec.load_pairs is None:
        raise DataError(f"Dataset {spec.name} has no paired renders (DatasetSpec.load_pairs).")
    pairs: list[Any] = resolve(spec.load_pairs)(root)
    return pairs


def _val_split(
    registries: Registries, config: Any, spec: DatasetSpec, split: str, root: Path
) -> Any:
    """The model-selection split: ``config.val_dataset``, else the training set's ``val``."""
    if config.val_dataset:
        val_spec, val_name = registries.dataset_split(config.val_dataset)
        val_root = root if val_spec.name == spec.name else _root(val_spec, None)
        return resolve(val_spec.load)(val_root, val_name)
    if spec.protocol_for("val") is not None and split != "val":
        return resolve(spec.load)(root, "val")
    return None


def prepare_model(model_spec: ModelSpec, model: Any, config: Any, train_split: Any) -> None:
    """Run the model's data-dependent initialisation on training images in a seeded order."""
    import numpy as np

    from vpr_bench.data.images import make_loader
    from vpr_bench.protocol import ResizePolicy

    records = list(train_split.database) + list(train_split.queries)
    order = np.random.default_rng(config.seed).permutation(len(records))
    paths = [records[int(i)].path for i in order]
    height = int(getattr(config.trainer, "height", 0) or 0)
    width = int(getattr(config.trainer, "width", 0) or 0)
    if height:
        policy = ResizePolicy.hard(height, width or height)
    elif model_spec.preprocess.train_size is not None:
        policy = ResizePolicy.hard(*model_spec.preprocess.train_size)
    else:
        policy = ResizePolicy()
    device = resolve_device(config.device)
    model.to(device)
    batches = (
        batch for _, batch in make_loader(paths, policy, model_spec.preprocess, batch_size=16)
    )
    log.info("Initialising %s from training images (prepare step)", model_spec.name)
    resolve(model_spec.prepare)(model, config.model, batches, config.seed)


def train_method(
    method: MethodSpec,
    registries: Registries,
    *,
    dataset_name: str | None = None,
    data_root: Path | None = None,
    profile: str | None = None,
    config_file: Path | None = None,
    sets: Sequence[str] = (),
    runs_dir: Path = Path("runs"),
    device: str | None = None,
    seed: int | None = None,
    resume: Path | None = None,
    emit: Callable[[RunEvent], None] | None = None,
) -> TrainOutcome:
    """Train ``method`` and return where its checkpoints are.

    Args:
        method: The method to train.
        registries: Component registries (from ``PluginManager.registries()``).
        dataset_name: ``--dataset`` style training set (default: the method's).
        data_root: Dataset folder (default: the dataset's ``default_root``).
        profile: One of ``method.profiles``.
        config_file: TOML overrides.
        sets: ``key=value`` overrides.
        runs_dir: Parent of run folders.
        device: ``auto``/``cpu``/``cuda[:N]`` (default: the config's ``device``).
        seed: Overrides the config's seed.
        resume: A run folder to continue from its ``checkpoints/last.pt`` with its saved config.
        emit: Receives run events (``PluginManager.emit``).

    Raises:
        UsageError: ``resume`` combined with config changes, or a bad folder.
        IncompatibleError: The method's parts or the dataset do not fit together.
    """
    from vpr_bench.config import flatten
    from vpr_bench.experiment import resolve_experiment

    if resume is not None:
        if profile or config_file or sets or seed is not None:
            raise UsageError(
                "--resume continues a run with its saved config.json; drop --profile, --config, "
                "--set and --seed (start a new run to change the config)."
            )
        saved_path = Path(resume) / "config.json"
        if not saved_path.is_file():
            raise UsageError(f"{resume} is not a run folder: it has no config.json.")
        saved = json.loads(saved_path.read_text(encoding="utf-8"))
        overrides = {k: v for k, v in flatten(saved["experiment"]).items() if k != "method"}
        config = resolve_experiment(method, registries, extra=overrides)
        dataset_name, data_root = (
            saved["dataset"],
            saved.get("data_root") and Path(saved["data_root"]),
        )
        run_dir = Path(resume)
    else:
        extra = {"seed": seed} if seed is not None else None
        config = resolve_experiment(
            method, registries, profile=profile, config_file=config_file, sets=sets, extra=extra
        )
        dataset_name = dataset_name or config.train_dataset or method.train_dataset
        registries.check_method(method, dataset_name)
        run_dir = new_run_dir(runs_dir, method.name)
    if device is not None:
        config.device = device
    spec, split = registries.dataset_split(dataset_name)
    root = _root(spec, data_root)
    loader = resolve(spec.load)
    train_split = loader(root, split)
    val_split = _val_split(registries, config, spec, split, root)
    loss_spec = registries.losses.get(method.loss)
    pairs = _pairs(spec, root) if loss_spec.batch_kind is BatchKind.DOMAIN_PAIRS else None
    model_spec = registries.models.get(method.model)
    model = resolve(model_spec.build)(config.model)
    loss = resolve(loss_spec.build)(config.loss)
    if model_spec.prepare is not None and resume is None:
        prepare_model(model_spec, model, config, train_split)
    record = {
        "experiment": config.to_dict(),
        "method": method.name,
        "dataset": dataset_name,
        "data_root": str(root),
        "val_dataset": val_split.name if val_split else None,
        "config_hash": config.digest(),
    }
    if resume is None:
        atomic_write_json(run_dir / "config.json", record)
    ctx = TrainContext(
        model=model,
        loss=loss,
        config=config.trainer,
        train_split=train_split,
        preprocess=model_spec.preprocess,
        run_dir=run_dir,
        val_split=val_split,
        pairs=pairs,
        device=resolve_device(config.device),
        seed=config.seed,
        method=method.name,
        config_dict=record,
        resume=resume is not None,
    )
    if emit is not None:
        ctx.emit = emit
    handler = logging.FileHandler(run_dir / "train.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    package_log = logging.getLogger("vpr_bench")
    package_log.addHandler(handler)
    previous_level = package_log.level
    if package_log.getEffectiveLevel() > logging.INFO:
        package_log.setLevel(logging.INFO)
    try:
        outcome: TrainOutcome = resolve(registries.trainers.get(method.trainer).fit)(ctx)
    finally:
        package_log.removeHandler(handler)
        package_log.setLevel(previous_level)
        handler.close()
    atomic_write_json(
        run_dir / "summary.json",
        {**outcome.to_dict(), "method": method.name, "dataset": dataset_name},
    )
    return outcome
