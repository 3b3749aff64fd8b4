from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from vpr_bench.builtin import observers
from vpr_bench.runtime import RunEvent


@pytest.fixture(autouse=True)
def _clean() -> None:
    observers.reset()


def test_jsonl_observer_writes_every_event_of_a_started_run(tmp_path: Path) -> None:
    observers.vpr_bench_run_event(RunEvent("run-started", "r1", {"run_dir": str(tmp_path)}, "t0"))
    observers.vpr_bench_run_event(
        RunEvent("epoch-ended", "r1", {"epoch": 1, "loss": 0.5, "lr": 1e-3, "val": {"R@1": 40.0}})
    )
    observers.vpr_bench_run_event(RunEvent("run-finished", "r1", {"best_val": {}}))
    observers.vpr_bench_run_event(RunEvent("epoch-ended", "r1", {"epoch": 2}))  # after the end
    lines = [json.loads(x) for x in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert [x["kind"] for x in lines] == ["run-started", "epoch-ended", "run-finished"]
    assert lines[1]["payload"]["val"] == {"R@1": 40.0}


def test_console_observer_logs_epoch_summary(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="vpr_bench.run"):
        observers.vpr_bench_run_event(
            RunEvent(
                "epoch-ended", "r2", {"epoch": 3, "loss": 0.25, "lr": 0.01, "val": {"R@1": 50.0}}
            )
        )
    assert "epoch 3: loss 0.2500 lr 1.00e-02 R@1=50.00" in caplog.text


def test_console_observer_says_a_selection_metric_is_a_mean_and_gives_each_split(
    caplog: pytest.LogCaptureFixture,
) -> None:
    payload = {
        "epoch": 1,
        "loss": 1.0,
        "lr": 0.001,
        "val": {"R@1": 20.0},
        "val_splits": {"x-ab": {"R@1": 30.0}, "x-ba": {"R@1": 10.0}},
    }
    with caplog.at_level(logging.INFO, logger="vpr_bench.run"):
        observers.vpr_bench_run_event(RunEvent("epoch-ended", "r3", payload))
    assert (
        "epoch 1: loss 1.0000 lr 1.00e-03 mean of 2 val splits R@1=20.00 "
        "(x-ab R@1=30.00; x-ba R@1=10.00)"
    ) in caplog.text
