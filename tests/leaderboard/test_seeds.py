"""Rows that differ only by seed: one row of mean ± std (n), on the page and in the frame."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from record_factory import SYNTH, make_record

from vpr_bench.leaderboard.collect import records_frame
from vpr_bench.leaderboard.render import render_benchmark, sort_rows
from vpr_bench.leaderboard.seeds import group_seeds


def _seeded(seed: int, r1: float, *, tag: str | None = None, clusters: int = 16, **kw):  # type: ignore[no-untyped-def]
    record = make_record(
        tag=tag or f"20261130T1000{seed:02d}Z",
        benchmark="synthcity",
        dataset="synthcity",
        protocol=SYNTH,
        profile="quick",
        metrics={"R@1": r1, "R@5": r1 + 20.0},
        per_condition={"night": {"R@1": r1 - 10.0}},
        **kw,
    )
    provenance = dataclasses.replace(record.provenance, seed=seed)
    config = {"seed": seed, "device": "cpu", "model": {"num_clusters": clusters}}
    return dataclasses.replace(record, provenance=provenance, config=config)


def _frame(tmp_path: Path, records: list) -> object:  # type: ignore[type-arg]
    return records_frame([(tmp_path / f"{i}.json", r) for i, r in enumerate(records)])


def test_three_seeds_become_one_row(tmp_path: Path) -> None:
    frame = group_seeds(
        _frame(tmp_path, [_seeded(s, v) for s, v in ((2, 41.0), (0, 40.0), (1, 42.0))])
    )
    assert len(frame) == 1
    row = frame.iloc[0]
    assert row["R@1"] == pytest.approx(41.0) and row["stds"]["R@1"] == pytest.approx(1.0)
    assert row["seeds"] == [0, 1, 2] and row["n_seeds"] == 3
    assert row["per_condition"]["night"]["R@1"] == pytest.approx(31.0)
    page = render_benchmark("synthcity", sort_rows(frame), hidden=0, command="vpr-bench x")
    assert "| 3 seeds (0, 1, 2) / quick" in page
    assert "41.0 ± 1.0" in page and "61.0 ± 1.0" in page


def test_what_differs_beyond_the_seed_keeps_its_own_row(tmp_path: Path) -> None:
    records = [
        _seeded(0, 40.0),
        _seeded(1, 42.0, clusters=32),  # another model config
        _seeded(2, 44.0, tag="openibl-sare-ind"),  # released weights never group
        _seeded(3, 46.0, method="sare"),  # another method
    ]
    frame = group_seeds(_frame(tmp_path, records))
    assert len(frame) == 4 and frame["stds"].isna().all()


def test_untrained_baselines_of_several_seeds_group(tmp_path: Path) -> None:
    records = [_seeded(0, 30.0, tag="untrained"), _seeded(1, 32.0, tag="untrained-1a2b3c4d")]
    frame = group_seeds(_frame(tmp_path, records))
    assert len(frame) == 1 and frame.iloc[0]["checkpoint"] == "2 seeds"
    assert frame.iloc[0]["stds"]["R@1"] == pytest.approx(2**0.5)
