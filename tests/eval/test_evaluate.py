from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from tests.eval.jobs import make_job, run_job
from vpr_bench import get_registries
from vpr_bench.errors import UsageError, VprBenchError
from vpr_bench.eval.evaluate import evaluate, recompute_metrics
from vpr_bench.eval.write import EvalOutcome
from vpr_bench.records import read_record, record_path
from vpr_bench.specs import ModelSpec
from vpr_bench.weights import fit_pca

COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255)]


class MeanColour(nn.Module):
    """Descriptor = L2-normalised mean colour: solid images of one colour match exactly."""

    descriptor_dim = 3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x.mean(dim=(2, 3)), dim=1)


SPEC = ModelSpec(name="mean-colour", build=lambda cfg: MeanColour(), config_cls=dict)


@pytest.fixture(scope="module")
def street(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """csv-folder: 5 database places 100 m apart; query 3 (night) shows place 4's colour."""
    root = tmp_path_factory.mktemp("street")
    (root / "db").mkdir()
    (root / "q").mkdir()
    db_rows = ["path,easting,northing,condition"]
    for i, colour in enumerate(COLOURS):
        Image.new("RGB", (8, 6), colour).save(root / "db" / f"{i}.png")
        db_rows.append(f"db/{i}.png,{100 * i},0,")
    q_rows = ["path,easting,northing,condition"]
    for i, colour in enumerate([COLOURS[0], COLOURS[1], COLOURS[2], COLOURS[4]]):
        Image.new("RGB", (8, 6), colour).save(root / "q" / f"{i}.png")
        q_rows.append(f"q/{i}.png,{100 * i + 3},0,{'night' if i == 3 else 'day'}")
    (root / "database.csv").write_text("\n".join(db_rows) + "\n")
    (root / "queries.csv").write_text("\n".join(q_rows) + "\n")
    return root


def _evaluate(street: Path, tmp_path: Path, split: str = "test", **overrides: Any) -> EvalOutcome:
    return run_job(MeanColour(), SPEC, "csv-folder", split, street, tmp_path, **overrides)


def test_hand_computed_metrics_record_and_predictions(street: Path, tmp_path: Path) -> None:
    outcome = _evaluate(street, tmp_path, save_grid=2)
    record = outcome.record
    assert record.metrics["R@1"] == pytest.approx(75.0)  # query 3 shows another place
    assert record.metrics["R@5"] == pytest.approx(100.0)
    assert record.per_condition["night"]["R@1"] == 0.0
    assert record.per_condition["day"]["R@1"] == pytest.approx(100.0)
    assert record.counts["n_queries"] == 4 and record.counts["n_database"] == 5
    assert record.descriptor_dim == 3 and record.leaderboard is False
    assert (
        record.protocol["name"] == "csv-folder"
        and record.config["evaluation"]["precision"] == "fp32"
    )
    assert record.timing.images_per_s > 0 and record.timing.search_ms_per_query > 0
    assert outcome.record_path == record_path(tmp_path / "out", record)
    assert read_record(outcome.record_path) == record
    name = outcome.predictions_path.name  # the data's folder name and digest are in it
    assert name.startswith("csv-folder.test.street0-") and name.endswith(".predictions.npz")
    assert outcome.grid_path is not None and Image.open(outcome.grid_path).size[1] > 0
    predictions, metrics, per_condition = recompute_metrics(
        outcome.predictions_path, list(get_registries().evaluators)
    )
    assert metrics == dict(record.metrics) and per_condition == record.per_condition
    assert predictions.result.knn_idx[3, 0] == 4
    assert predictions.query_paths()[0] == (street / "q" / "0.png").resolve()


def test_second_run_reads_the_cache(street: Path, tmp_path: Path) -> None:
    first = _evaluate(street, tmp_path).record
    second = _evaluate(street, tmp_path, records_dir=tmp_path / "records").record
    # a cache hit keeps the speed measured when the descriptors were computed, to the bit
    assert first.timing.images_per_s > 0
    assert second.timing.images_per_s == first.timing.images_per_s
    assert second.metrics == first.metrics
    assert (tmp_path / "records" / "unit" / "mean-colour.untrained").is_dir()
    uncached = _evaluate(street, tmp_path, use_cache=False).record
    assert uncached.timing.images_per_s > 0


def test_pca_is_applied_before_search(street: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    pca = fit_pca(rng.standard_normal((50, 3)).astype(np.float32), 2)
    record = _evaluate(street, tmp_path, pca=pca, use_cache=False).record
    assert record.descriptor_dim == 2 and record.config["evaluation"]["pca_dim"] == 2


def test_errors(street: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no split 'val'"):
        _evaluate(street, tmp_path, split="val")
    with pytest.raises(UsageError, match="save-grid must be >= 0"):
        _evaluate(street, tmp_path, save_grid=-1)


def test_evaluate_computes_and_writes_nothing(street: Path, tmp_path: Path) -> None:
    job = make_job(MeanColour(), SPEC, "csv-folder", "test", street, tmp_path, use_cache=False)
    result = evaluate(job)
    assert result is not None and result.record.metrics["R@1"] == pytest.approx(75.0)
    assert not (tmp_path / "out").exists()
    np.testing.assert_array_equal(result.retrieval.knn_idx[:, 0], [0, 1, 2, 4])


def test_a_failed_record_write_leaves_no_predictions(
    street: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vpr_bench.eval import write

    def full_disk(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(write, "write_record", full_disk)
    with pytest.raises(VprBenchError, match=r"\.json: No space left on device; no result of"):
        _evaluate(street, tmp_path, use_cache=False, save_grid=1)
    assert not [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
