"""A protocol without local ground truth: predictions only, no R@N, no leaderboard, exports."""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.eval.test_evaluate import COLOURS, MeanColour
from vpr_bench import DatasetSpec, EvalProtocol, EvaluatorSpec, MetricSpec, hookimpl
from vpr_bench.data.formats.csv_list import load_csv_folder
from vpr_bench.data.geo import split_positives
from vpr_bench.data.load import SplitLoader, SplitTarget
from vpr_bench.eval.job import EvalCandidate, EvalOutputs, EvalSettings
from vpr_bench.pipeline.jobs import evaluate_and_write, resolve_job
from vpr_bench.specs import ModelSpec
from vpr_bench.testing import isolated_manager

PROTOCOL = EvalProtocol("server-scored", split="test", ground_truth="none")


def _load(root: Path, split: str) -> Any:
    return load_csv_folder(root, split)


def _top1_file(result: Any, split: Any, folder: Path, method: str) -> Path | None:
    if split.extras.get("no-export"):
        return None
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"top1_{method}.txt"
    lines = [
        f"{q.path.name} {split.database[int(i)].path.name}"
        for q, i in zip(split.queries, result.knn_idx[:, 0], strict=True)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def _nothing(result: Any, protocol: Any) -> dict[str, float]:
    raise AssertionError("no evaluator computes metrics without ground truth")


def _plugin() -> types.ModuleType:
    module = types.ModuleType("test_no_ground_truth_plugin")

    @hookimpl
    def vpr_bench_datasets() -> Any:
        yield DatasetSpec(
            "server-city", 1, ("test",), load=_load, protocols=(PROTOCOL,), default_split="test"
        )

    @hookimpl
    def vpr_bench_evaluators() -> Any:
        yield EvaluatorSpec(
            "top1-file", (MetricSpec("none"),), compute=_nothing, requires_knn=1, export=_top1_file
        )

    module.vpr_bench_datasets = vpr_bench_datasets  # type: ignore[attr-defined]
    module.vpr_bench_evaluators = vpr_bench_evaluators  # type: ignore[attr-defined]
    return module


@pytest.fixture
def city(tmp_path: Path) -> Path:
    from PIL import Image

    root = tmp_path / "city"
    (root / "db").mkdir(parents=True)
    (root / "q").mkdir()
    rows = ["path,easting,northing,condition"]
    for i, colour in enumerate(COLOURS[:3]):
        Image.new("RGB", (8, 6), colour).save(root / "db" / f"{i}.png")
        rows.append(f"db/{i}.png,0,0,")
    (root / "database.csv").write_text("\n".join(rows) + "\n")
    rows = ["path,easting,northing,condition"]
    for i, colour in enumerate([COLOURS[2], COLOURS[0]]):
        Image.new("RGB", (8, 6), colour).save(root / "q" / f"{i}.png")
        rows.append(f"q/{i}.png,0,0,")
    (root / "queries.csv").write_text("\n".join(rows) + "\n")
    return root


def test_predictions_and_export_without_metrics(city: Path, tmp_path: Path) -> None:
    registries = isolated_manager([_plugin()]).registries()
    spec = registries.datasets.get("server-city")
    target = SplitTarget(spec, "test", city, spec.protocol_for("test"))
    model_spec = ModelSpec(name="mean-colour", build=lambda cfg: MeanColour(), config_cls=dict)
    job = resolve_job(
        registries,
        EvalCandidate(model=MeanColour(), model_spec=model_spec, method="colour", leaderboard=True),
        target,
        SplitLoader(),
        settings=EvalSettings(device=torch.device("cpu"), use_cache=False, cache_dir=tmp_path),
        outputs=EvalOutputs(
            records_dir=tmp_path / "out", predictions_dir=tmp_path / "out", command="test"
        ),
        benchmark="unit",
    )
    outcome = evaluate_and_write(job)
    assert outcome is not None
    record = outcome.record
    assert record.metrics == {} and record.per_condition == {}
    assert record.leaderboard is False
    assert record.counts["n_queries"] == 2 and record.counts["n_scored"] == 0
    exported = outcome.predictions_path.with_suffix("").with_suffix(".exports") / "top1_colour.txt"
    assert exported.read_text().splitlines() == ["0.png 2.png", "1.png 0.png"]


def test_no_positives_and_the_protocol_flag(city: Path) -> None:
    import dataclasses

    split = dataclasses.replace(load_csv_folder(city, "test"), protocol=PROTOCOL)
    assert [len(p) for p in split_positives(split)] == [0, 0]
    assert not PROTOCOL.has_ground_truth
    assert EvalProtocol("x").has_ground_truth
    with pytest.raises(ValueError, match="radius, lists, frames or none"):
        EvalProtocol("y", ground_truth="server")  # type: ignore[arg-type]
