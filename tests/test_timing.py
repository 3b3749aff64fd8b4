"""The per-phase clock behind the time table that ends ``vpr-bench run``."""

from __future__ import annotations

import pytest

from vpr_bench import timing
from vpr_bench.timing import PhaseClock, phase_table


class FakeTime:
    """A perf_counter that moves only when told to."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake_time(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    fake = FakeTime()
    monkeypatch.setattr(timing.time, "perf_counter", fake)
    return fake


def test_nested_phases_count_each_second_once(fake_time: FakeTime) -> None:
    clock = PhaseClock()
    with clock.phase("train"):
        fake_time.now += 10  # train alone
        with clock.phase("prepare"):
            fake_time.now += 3  # prepare inside train: not train's
        fake_time.now += 5  # train again
        with clock.phase("extract"):
            fake_time.now += 2
            with clock.phase("search"):
                fake_time.now += 1
            fake_time.now += 4
    fake_time.now += 7  # nobody's
    with clock.phase("train"):
        fake_time.now += 1
    assert clock.seconds == {"train": 16.0, "prepare": 3.0, "extract": 6.0, "search": 1.0}
    assert clock.calls == {"train": 2, "prepare": 1, "extract": 1, "search": 1}
    assert clock.elapsed() == 33.0


def test_a_phase_that_raises_is_still_counted(fake_time: FakeTime) -> None:
    clock = PhaseClock()
    with pytest.raises(RuntimeError), clock.phase("write"):
        fake_time.now += 2
        raise RuntimeError("disk full")
    assert clock.seconds == {"write": 2.0} and clock.calls == {"write": 1}


def test_unknown_phase_names_the_known_ones() -> None:
    clock = PhaseClock()
    with pytest.raises(ValueError, match="unknown phase 'training'; expected one of generate,"):
        clock.phase("training").__enter__()


def test_timed_decorator_reports_to_the_process_clock(fake_time: FakeTime) -> None:
    timing.clock.reset()

    @timing.timed("pca")
    def fit(x: int) -> int:
        fake_time.now += 4
        return x + 1

    assert fit(1) == 2 and fit.__name__ == "fit"
    assert timing.clock.seconds == {"pca": 4.0} and timing.clock.calls == {"pca": 1}
    timing.clock.reset()
    assert timing.clock.seconds == {} and timing.clock.elapsed() == 0.0


def test_table_lists_phases_in_order_with_other_and_total(fake_time: FakeTime) -> None:
    clock = PhaseClock()
    for name, seconds in (("search", 5.0), ("train", 60.0), ("extract", 15.0)):
        with clock.phase(name):
            fake_time.now += seconds
    lines = phase_table(clock, 100.0).splitlines()
    cells = [line.split() for line in lines[2:]]
    assert lines[0].split() == ["phase", "seconds", "share", "times"]
    assert cells == [
        ["train", "60.0", "60", "%", "1"],
        ["extract", "15.0", "15", "%", "1"],
        ["search", "5.0", "5", "%", "1"],
        ["other", "20.0", "20", "%"],
        ["total", "100.0", "100", "%"],
    ]
