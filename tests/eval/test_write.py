"""Where a result is written: a reproduced trained result replaces its record."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

from vpr_bench.eval.write import same_run_record
from vpr_bench.records import record_path, write_record

_spec = importlib.util.spec_from_file_location(
    "eval_record_factory", Path(__file__).resolve().parents[1] / "leaderboard" / "record_factory.py"
)
assert _spec is not None and _spec.loader is not None
_factory = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_factory)
make_record = _factory.make_record

SHA = "ab" * 32


def _trained(tag: str, **changes: object):  # type: ignore[no-untyped-def]
    record = dataclasses.replace(
        make_record(tag=tag, benchmark="synthcity", dataset="synthcity", profile="quick"),
        weights_sha256=SHA,
        config={"seed": 43, "model": {"num_clusters": 16}},
    )
    return dataclasses.replace(record, **changes) if changes else record


def test_a_reproduced_result_takes_the_earlier_tag(tmp_path: Path) -> None:
    first = _trained("20261125T145243Z")
    write_record(first, record_path(tmp_path, first))
    again = _trained("20261130T101010Z")
    replaced = same_run_record(again, tmp_path)
    assert replaced.checkpoint_tag == "20261125T145243Z"
    assert record_path(tmp_path, replaced) == record_path(tmp_path, first)


def test_anything_different_keeps_its_own_record(tmp_path: Path) -> None:
    first = _trained("20261125T145243Z")
    write_record(first, record_path(tmp_path, first))
    others = [
        _trained("new", weights_sha256="cd" * 32),  # other weights
        _trained("new", config={"seed": 43, "model": {"num_clusters": 32}}),  # other config
        _trained("new", dataset_version=3),  # the data changed
        _trained("new", weights_sha256=""),  # weights without a digest
        _trained("new", checkpoint_tag="untrained"),  # baselines are handled apart
    ]
    for other in others:
        assert same_run_record(other, tmp_path).checkpoint_tag == other.checkpoint_tag
