"""Builds evaluation jobs for the eval tests the way the pipeline's resolver does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from vpr_bench import get_registries
from vpr_bench.data.load import SplitLoader, SplitTarget
from vpr_bench.eval.job import EvalCandidate, EvalJob, EvalOutputs, EvalSettings
from vpr_bench.eval.write import EvalOutcome
from vpr_bench.pipeline.jobs import evaluate_and_write, resolve_job
from vpr_bench.specs import ModelSpec


def make_job(
    model: nn.Module,
    spec: ModelSpec,
    dataset: str,
    split: str,
    root: Path,
    out: Path,
    *,
    records_dir: Path | None = None,
    save_grid: int = 0,
    use_cache: bool = True,
    **candidate: Any,
) -> EvalJob:
    registries = get_registries()
    dataset_spec = registries.datasets.get(dataset)
    target = SplitTarget(dataset_spec, split, root, dataset_spec.protocol_for(split))
    return resolve_job(
        registries,
        EvalCandidate(
            model=model, model_spec=spec, method=spec.name, leaderboard=False, **candidate
        ),
        target,
        SplitLoader(),
        settings=EvalSettings(
            device=torch.device("cpu"), use_cache=use_cache, cache_dir=out / "cache"
        ),
        outputs=EvalOutputs(
            records_dir=records_dir or out / "out",
            predictions_dir=out / "out",
            save_grid=save_grid,
            command="test",
        ),
        benchmark="unit",
    )


def run_job(*args: Any, **kwargs: Any) -> EvalOutcome:
    outcome = evaluate_and_write(make_job(*args, **kwargs))
    assert outcome is not None
    return outcome
