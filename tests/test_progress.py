"""Progress without a terminal: one log line per finished phase, never carriage returns."""

from __future__ import annotations

import logging

import pytest

from vpr_bench.progress import LineProgress, progress


def test_without_a_terminal_a_phase_logs_one_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="vpr_bench.progress")
    with progress(30, "extract synthcity-test queries", "img", min_seconds=0) as bar:
        assert isinstance(bar, LineProgress)  # pytest captures stderr: not a terminal
        for _ in range(3):
            bar.update(10)
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith("extract synthcity-test queries: 30 img in ")
    assert line.endswith(" img/s)") and "\r" not in line


def test_a_short_or_failed_phase_says_so(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="vpr_bench.progress")
    bar = progress(100, "knn", "block", min_seconds=0)
    bar.update(40)
    bar.close()
    bar.close()  # once only
    with pytest.raises(RuntimeError), progress(10, "decode", "img", min_seconds=0) as failing:
        failing.update(5)
        raise RuntimeError("boom")
    assert [r.getMessage() for r in caplog.records] == ["knn: stopped after 40 of 100 block"]


def test_disabled_progress_is_silent_and_bytes_read_as_bytes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="vpr_bench.progress")
    with progress(10, "quiet", "img", enabled=False) as bar:
        bar.update(10)
    with progress(None, "vgg16_netvlad.pth", "B", min_seconds=0, unit_scale=True) as download:
        download.update(2_500_000)
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith("vgg16_netvlad.pth: 2.5M B in ")


def test_a_short_phase_is_no_news(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="vpr_bench.progress")
    with progress(1, "knn", "block") as bar:  # a validation's search: milliseconds
        bar.update(1)
    assert caplog.records == []
