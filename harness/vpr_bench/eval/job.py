"""One evaluation, fully resolved: :class:`EvalJob`.

A job is built once, by :func:`vpr_bench.run.jobs.resolve_job` (every command goes through
it), and then only read: :func:`vpr_bench.eval.evaluate.evaluate` computes a result from it
and :func:`vpr_bench.eval.write.write_result` writes that result where the job says. Nothing in
a job is looked up again later, so two commands that build equal jobs make equal numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vpr_bench.errors import UsageError
from vpr_bench.protocol import EvalProtocol

if TYPE_CHECKING:
    import torch
    from torch import nn

    from vpr_bench.data.load import SplitTarget
    from vpr_bench.data.split import GeoSplit
    from vpr_bench.specs import EvaluatorSpec, ModelSpec, Preprocess
    from vpr_bench.weights import PcaWhitening

__all__ = ["EvalCandidate", "EvalJob", "EvalOutputs", "EvalSettings"]


@dataclass(frozen=True)
class EvalCandidate:
    """The model under test and what its record says about it.

    Attributes:
        model: The built model with its weights loaded.
        model_spec: The model's spec (its ``preprocess`` is used and recorded).
        method: The record's ``method`` (a method name, or the model name for a bare model).
        checkpoint_tag: Names the weights (``"untrained"`` when none).
        weights_sha256: sha256 of the weights file (``""`` when none).
        trained_on: The training set of the weights (``""``: none or unknown).
        pca: PCA-whitening applied to both descriptor sets before the search.
        profile: The config profile (``""``: defaults).
        config: The resolved config, recorded and hashed (evaluation settings are added).
        seed: The run's seed (recorded).
        leaderboard: False keeps the record off leaderboards.
        plugin_versions: ``{distribution: version}`` of the plugins involved.
    """

    model: nn.Module
    model_spec: ModelSpec
    method: str
    checkpoint_tag: str = "untrained"
    weights_sha256: str = ""
    trained_on: str = ""
    pca: PcaWhitening | None = None
    profile: str = ""
    config: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 0
    leaderboard: bool = True
    plugin_versions: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class EvalSettings:
    """How descriptors are made and searched (none of it changes a protocol).

    Attributes:
        device: The resolved torch device (see :func:`vpr_bench.device.resolve_device`).
        batch_size: Extraction batch size (halved on CUDA out-of-memory).
        num_workers: DataLoader worker processes.
        precision: ``"fp32"`` (protocol parity), ``"bf16"`` or ``"fp16"``.
        use_cache: Read and write the descriptor cache.
        cache_dir: Cache folder (None: ``$VPR_BENCH_CACHE`` or the user cache).
    """

    device: torch.device
    batch_size: int = 32
    num_workers: int = 0
    precision: str = "fp32"
    use_cache: bool = True
    cache_dir: Path | None = None

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise UsageError(
                f"--batch-size must be an integer >= 1, got {self.batch_size}; pass the number "
                "of images per extraction batch (default 32)."
            )
        if self.num_workers < 0:
            raise UsageError(
                f"--num-workers must be an integer >= 0, got {self.num_workers}; pass 0 to "
                "decode images in the main process (the default) or a number of workers."
            )


@dataclass(frozen=True)
class EvalOutputs:
    """Where a result goes.

    Attributes:
        records_dir: Root of ``<benchmark>/<method>.<tag>/<dataset>.<split>.<data>.json``.
        predictions_dir: Root of the predictions file and the grid (same relative path).
        save_grid: Render a retrieval grid of this many queries (0: none).
        command: The command line recorded in the provenance (None: ``sys.argv``).
    """

    records_dir: Path
    predictions_dir: Path
    save_grid: int = 0
    command: str | None = None

    def __post_init__(self) -> None:
        if self.save_grid < 0:
            raise UsageError(f"--save-grid must be >= 0, got {self.save_grid}.")


@dataclass(frozen=True)
class EvalJob:
    """Everything one evaluation needs, resolved.

    Attributes:
        candidate: The model under test and its identity.
        target: The dataset, split, folder and protocol.
        split: The loaded split (its ``protocol`` is ``target.protocol``).
        evaluators: Evaluators run on the shared kNN result besides the harness metrics.
        benchmark: The leaderboard group of the record.
        settings: Extraction and search settings.
        outputs: Where the record, predictions and grid go.
    """

    candidate: EvalCandidate
    target: SplitTarget
    split: GeoSplit
    evaluators: tuple[EvaluatorSpec, ...]
    benchmark: str
    settings: EvalSettings
    outputs: EvalOutputs

    @property
    def protocol(self) -> EvalProtocol:
        """The protocol the split is evaluated under."""
        return self.target.require_protocol()

    @property
    def preprocess(self) -> Preprocess:
        """The model's input convention."""
        return self.candidate.model_spec.preprocess
