"""The one resolver of evaluation jobs: :func:`resolve_job`.

``vpr-bench run`` (untrained baselines, trained methods, released checkpoints) and
``vpr-bench eval`` all build their :class:`~vpr_bench.eval.job.EvalJob` here, so the record's
identity (plugin versions, benchmark, leaderboard flag) is decided by one rule, and
:func:`evaluate_and_write` is the one way a job becomes files.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from vpr_bench.eval.job import EvalCandidate, EvalJob, EvalOutputs, EvalSettings

if TYPE_CHECKING:
    from vpr_bench.data.load import SplitLoader, SplitTarget
    from vpr_bench.eval.write import EvalOutcome
    from vpr_bench.registry import Registries

__all__ = ["evaluate_and_write", "plugin_versions", "resolve_job", "tag_of_weights"]


def plugin_versions(
    registries: Registries, *, dataset: str, model: str, method: str | None = None
) -> dict[str, str]:
    """``{distribution: version}`` of the plugins that provide the dataset, model and method."""
    from vpr_bench.provenance import distribution_versions

    dists = {
        registries.datasets.entry(dataset).distribution,
        registries.models.entry(model).distribution,
    }
    if method is not None:
        dists.add(registries.methods.entry(method).distribution)
    return distribution_versions(sorted(dists))


def resolve_job(
    registries: Registries,
    candidate: EvalCandidate,
    target: SplitTarget,
    splits: SplitLoader,
    *,
    settings: EvalSettings,
    outputs: EvalOutputs,
    benchmark: str | None = None,
) -> EvalJob:
    """Build the frozen :class:`EvalJob` of ``candidate`` on ``target``.

    Args:
        registries: Every installed evaluator runs on the job's kNN result.
        candidate: The model under test and its identity.
        target: The evaluation dataset, split, folder and protocol.
        splits: Loads the split (once per run).
        settings: Extraction and search settings.
        outputs: Where the record, predictions and grid go.
        benchmark: The leaderboard group (default: the dataset's name).

    Raises:
        UsageError: The split has no protocol.
        DataError: The split cannot be read or lacks database or query images.
    """
    split = splits.load(target, for_evaluation=True)
    return EvalJob(
        candidate=candidate,
        target=target,
        split=split,
        evaluators=tuple(registries.evaluators),
        benchmark=benchmark or target.spec.name,
        settings=settings,
        outputs=outputs,
    )


def evaluate_and_write(job: EvalJob) -> EvalOutcome | None:
    """Evaluate ``job`` and write its outputs (None on other torchrun ranks)."""
    from vpr_bench.eval.evaluate import evaluate
    from vpr_bench.eval.write import write_result
    from vpr_bench.timing import phase

    result = evaluate(job)
    if result is None:
        return None
    with phase("write"):
        return write_result(result)


def tag_of_weights(path: Path) -> str:
    """A tag for a weights file: the run folder of ``<run>/checkpoints/x.pt``, else its stem."""
    path = Path(path)
    return path.parent.parent.name if path.parent.name == "checkpoints" else path.stem
