"""Training a method: load its data once (:func:`load_training_data`), then run its trainer.

Used by ``vpr-bench train`` and ``vpr-bench run``. A run writes to
``<runs_dir>/<method>/<UTC time>/``: ``config.json`` (the resolved config), ``train.log``,
``events.jsonl`` (JSONL observer), ``checkpoints/{last,best,final}.pt`` (+ ``.json`` sidecars)
and ``summary.json``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vpr_bench.atomic import atomic_write_json, check_writable_dir
from vpr_bench.errors import DataError, UsageError, VprBenchError
from vpr_bench.registry import Registries, resolve
from vpr_bench.runtime import RunEvent
from vpr_bench.specs import BatchKind, MethodSpec, ModelSpec
from vpr_bench.timing import timed
from vpr_bench.train.context import TrainContext, TrainOutcome

if TYPE_CHECKING:
    from torch import nn

    from vpr_bench.data.load import SplitLoader
    from vpr_bench.data.split import GeoSplit
    from vpr_bench.experiment import ExperimentConfig

__all__ = [
    "TrainingData",
    "check_run_folder",
    "load_training_data",
    "new_run_dir",
    "prepare_model",
    "read_run_config",
    "resume_training",
    "train_method",
]

log = logging.getLogger(__name__)


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


@dataclass(frozen=True)
class TrainingData:
    """The data one training run reads, loaded once.

    Attributes:
        dataset: The ``--dataset`` style name of the training set.
        root: Its folder.
        train_split: The training split.
        val_split: The model-selection split (never a test split), or None; the first of
            ``val_splits`` when there are several.
        val_splits: All model-selection splits (``val_dataset`` may name several, separated by
            commas); ``(val_split,)`` when only that is given.
        pairs: Cross-domain image pairs for domain-pairs and domain-views losses, else None.
    """

    dataset: str
    root: Path
    train_split: GeoSplit
    val_split: GeoSplit | None = None
    pairs: list[Any] | None = None
    val_splits: tuple[GeoSplit, ...] = ()

    def __post_init__(self) -> None:
        if self.val_splits:
            object.__setattr__(self, "val_split", self.val_splits[0])
        elif self.val_split is not None:
            object.__setattr__(self, "val_splits", (self.val_split,))


def load_training_data(
    method: MethodSpec,
    registries: Registries,
    config: ExperimentConfig,
    *,
    dataset_name: str | None = None,
    data_root: Path | None = None,
    splits: SplitLoader | None = None,
) -> TrainingData:
    """Load the training split, the model-selection split and (when the loss needs them) pairs.

    The model-selection split is ``config.val_dataset`` (several, separated by commas, are
    averaged: see :class:`~vpr_bench.train.context.TrainContext`), else the training set's
    ``val`` split when it has a protocol, else none.

    Args:
        method: The method (its loss decides whether pairs are loaded).
        registries: Where datasets are looked up.
        config: The resolved config (``train_dataset``, ``val_dataset``).
        dataset_name: Overrides ``config.train_dataset``.
        data_root: The training set's folder (default: the dataset's).
        splits: Shares loaded splits with the rest of a run (default: a fresh loader).

    Raises:
        UnknownNameError: Unknown dataset.
        DataError: Missing data, or pairs the dataset cannot give.
    """
    from vpr_bench.data.load import SplitLoader, SplitTarget, resolve_target

    loader = splits or SplitLoader()
    name = dataset_name or config.train_dataset or method.train_dataset
    train = resolve_target(registries, name, data_root)
    vals: list[SplitTarget] = []
    for val_name in _val_dataset_names(config.val_dataset):
        val_spec, _ = registries.dataset_split(val_name)
        same_root = data_root if val_spec.name == train.spec.name else None
        vals.append(resolve_target(registries, val_name, same_root))
    if not vals and train.spec.protocol_for("val") is not None and train.split != "val":
        vals.append(SplitTarget(train.spec, "val", train.root, train.spec.protocol_for("val")))
    loss_spec = registries.losses.get(method.loss)
    pairs = None
    if loss_spec.batch_kind in (BatchKind.DOMAIN_PAIRS, BatchKind.DOMAIN_VIEWS):
        if train.spec.load_pairs is None:
            raise DataError(
                f"Dataset {train.spec.name} has no paired renders (DatasetSpec.load_pairs)."
            )
        pairs = list(resolve(train.spec.load_pairs)(train.root))
    return TrainingData(
        dataset=name,
        root=train.root,
        train_split=loader.load(train),
        val_splits=tuple(loader.load(val) for val in vals),
        pairs=pairs,
    )


def _val_dataset_names(value: str) -> list[str]:
    """The dataset names in ``val_dataset`` (comma-separated; ``""``: none)."""
    if not value.strip():
        return []
    names = [part.strip() for part in value.split(",")]
    if not all(names):
        raise UsageError(
            f"val_dataset {value!r} has an empty name; list val splits separated by single "
            "commas, e.g. 'daco-tokyo-ab,daco-tokyo-ba,daco-tokyo-cross'."
        )
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise UsageError(f"val_dataset {value!r} names {', '.join(twice)} more than once.")
    return names


@timed("prepare")
def prepare_model(model_spec: ModelSpec, model: Any, config: Any, train_split: Any) -> None:
    """Run the model's data-dependent initialisation on training images in a seeded order."""
    import numpy as np

    from vpr_bench.data.images import make_loader
    from vpr_bench.device import resolve_device
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
    model.to(resolve_device(config.device))
    batches = (
        batch for _, batch in make_loader(paths, policy, model_spec.preprocess, batch_size=16)
    )
    log.info("Initialising %s from training images (prepare step)", model_spec.name)
    resolve(model_spec.prepare)(model, config.model, batches, config.seed)


@timed("train")
def train_method(
    method: MethodSpec,
    registries: Registries,
    config: ExperimentConfig,
    data: TrainingData,
    *,
    runs_dir: Path = Path("runs"),
    model: nn.Module | None = None,
    resume_dir: Path | None = None,
    emit: Callable[[RunEvent], None] | None = None,
) -> TrainOutcome:
    """Train ``method`` with an already resolved config on already loaded data.

    Args:
        method: The method to train.
        registries: Component registries (from ``PluginManager.registries()``).
        config: The resolved config (:func:`vpr_bench.resolve_experiment`); recorded in the
            run's ``config.json`` as it is (set ``config.device`` to choose the device).
        data: The training data (:func:`load_training_data`).
        runs_dir: Parent of run folders.
        model: The model to train, already built (and prepared) by the caller; None builds it
            from ``config.model`` (seeded with ``config.seed``) and runs the model's prepare
            step.
        resume_dir: Continue this run folder from its ``checkpoints/last.pt``.
        emit: Receives run events (``PluginManager.emit``).

    Raises:
        IncompatibleError: The method's parts or the dataset do not fit together.
        UsageError: A bad device, or a run folder that cannot be written (checked first).
        VprBenchError: The run's config.json cannot be written (the run folder is removed).
    """
    from vpr_bench.device import resolve_device
    from vpr_bench.train.setup import build_model_seeded

    device = str(resolve_device(config.device))
    check_run_folder(runs_dir, resume_dir)
    model_spec = registries.models.get(method.model)
    if model is None:
        model = build_model_seeded(model_spec, config.model, config.seed)
        if model_spec.prepare is not None and resume_dir is None:
            prepare_model(model_spec, model, config, data.train_split)
    loss = resolve(registries.losses.get(method.loss).build)(config.loss)
    missing_parents = [p for p in (Path(runs_dir), Path(runs_dir) / method.name) if not p.exists()]
    run_dir = resume_dir if resume_dir is not None else new_run_dir(runs_dir, method.name)
    record = {
        "experiment": config.to_dict(),
        "method": method.name,
        "dataset": data.dataset,
        "data_root": str(data.root),
        "val_dataset": ",".join(s.name for s in data.val_splits) or None,
        "config_hash": config.digest(),
    }
    ctx = TrainContext(
        model=model,
        loss=loss,
        config=config.trainer,
        train_split=data.train_split,
        preprocess=model_spec.preprocess,
        run_dir=run_dir,
        val_splits=data.val_splits,
        pairs=data.pairs,
        device=device,
        seed=config.seed,
        method=method.name,
        config_dict=record,
        resume=resume_dir is not None,
    )
    if emit is not None:
        ctx.emit = emit
    trainer = resolve(registries.trainers.get(method.trainer).fit)
    try:
        if resume_dir is None:
            _write_run_config(run_dir / "config.json", record)
        with _run_log(run_dir):
            outcome: TrainOutcome = trainer(ctx)
    except BaseException:
        if resume_dir is None:
            _discard_unstarted(run_dir, missing_parents)
        raise
    atomic_write_json(
        run_dir / "summary.json",
        {**outcome.to_dict(), "method": method.name, "dataset": data.dataset},
    )
    return outcome


def resume_training(
    method: MethodSpec,
    registries: Registries,
    run_dir: Path,
    *,
    device: str | None = None,
    emit: Callable[[RunEvent], None] | None = None,
) -> TrainOutcome:
    """Continue the run in ``run_dir`` with the config and data it saved in ``config.json``.

    Raises:
        UsageError: ``run_dir`` is not a run folder, or is a run of another method.
        DataError: Its ``config.json`` is damaged (not JSON, or without the saved config).
    """
    from vpr_bench.config import flatten
    from vpr_bench.experiment import resolve_experiment

    saved = read_run_config(Path(run_dir))
    if saved["method"] != method.name:
        raise UsageError(
            f"{run_dir} is a run of {saved['method']}, not {method.name}: resume it with "
            f"'vpr-bench train {saved['method']} --resume {run_dir}'."
        )
    check_run_folder(Path(run_dir), Path(run_dir))
    overrides = {k: v for k, v in flatten(saved["experiment"]).items() if k != "method"}
    config = resolve_experiment(
        method,
        registries,
        layers=[(str(Path(run_dir) / "config.json"), overrides)],
        extra={"device": device} if device is not None else None,
    )
    data_root = saved.get("data_root")
    data = load_training_data(
        method,
        registries,
        config,
        dataset_name=saved["dataset"],
        data_root=Path(data_root) if data_root else None,
    )
    return train_method(method, registries, config, data, resume_dir=Path(run_dir), emit=emit)


def read_run_config(run_dir: Path) -> dict[str, Any]:
    """The ``config.json`` a run saved when it started, checked for what resuming needs.

    Raises:
        UsageError: ``run_dir`` has no ``config.json`` (it is not a run folder).
        DataError: The file is unreadable, not JSON, or lacks the method, dataset or config.
    """
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise UsageError(f"{run_dir} is not a run folder: it has no config.json.")
    damaged = (
        "it is what --resume continues from; restore it (e.g. from a backup), or start a new "
        "run without --resume"
    )
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path} is damaged ({exc}); {damaged}.") from exc
    if not isinstance(saved, dict):
        raise DataError(f"{path} is damaged (it holds no JSON object); {damaged}.")
    missing = [
        key
        for key, kind in (("method", str), ("dataset", str), ("experiment", dict))
        if not isinstance(saved.get(key), kind)
    ]
    if missing:
        raise DataError(f"{path} is damaged (no valid {', '.join(missing)}); {damaged}.")
    return saved


def check_run_folder(runs_dir: Path, resume_dir: Path | None = None) -> None:
    """Check, before any training work, that the run's folder can be created and written.

    Args:
        runs_dir: The parent of new run folders (``--runs-dir``).
        resume_dir: The run folder being resumed (it is written to instead of ``runs_dir``).

    Raises:
        UsageError: The folder is a file or cannot be written (read-only, no permission).
        VprBenchError: Its disk is full.
    """
    if resume_dir is not None:
        check_writable_dir(
            resume_dir,
            "Run folder",
            "A resumed run writes its checkpoints there: make it writable, or copy the run "
            "folder somewhere writable and resume the copy.",
            space_fix="A resumed run writes its checkpoints there: free space on its disk, or "
            "copy the run folder elsewhere and resume the copy.",
        )
    else:
        check_writable_dir(
            runs_dir, "--runs-dir folder", "Pass a folder you can write to with --runs-dir DIR."
        )


def _write_run_config(path: Path, record: dict[str, Any]) -> None:
    try:
        atomic_write_json(path, record)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise VprBenchError(
            f"Cannot write {path}: {reason}; the run did not start and nothing was kept. Free "
            "disk space or pass another --runs-dir."
        ) from exc


def _discard_unstarted(run_dir: Path, missing_parents: list[Path]) -> None:
    """Remove a fresh run folder whose trainer failed before it saved any checkpoint.

    A run that never trained leaves nothing behind (no ``config.json``, no empty
    ``train.log``); the folders made for it go too. A run with a checkpoint is kept: it can be
    resumed.
    """
    if any(run_dir.rglob("*.pt")):
        return
    shutil.rmtree(run_dir, ignore_errors=True)
    for parent in reversed(missing_parents):
        with contextlib.suppress(OSError):
            parent.rmdir()  # only when empty
    log.info("Removed %s: the run failed before its first checkpoint", run_dir)


@contextlib.contextmanager
def _run_log(run_dir: Path) -> Iterator[None]:
    """Copy the package's log records (INFO and up) into ``run_dir/train.log``."""
    handler = logging.FileHandler(run_dir / "train.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    package_log = logging.getLogger("vpr_bench")
    package_log.addHandler(handler)
    previous_level = package_log.level
    if package_log.getEffectiveLevel() > logging.INFO:
        package_log.setLevel(logging.INFO)
    try:
        yield
    finally:
        package_log.removeHandler(handler)
        package_log.setLevel(previous_level)
        handler.close()
