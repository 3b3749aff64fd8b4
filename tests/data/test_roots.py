"""Dataset roots: explicit, $VPR_BENCH_DATA/<name>, default, and the error naming all three."""

from __future__ import annotations

from pathlib import Path

import pytest

from vpr_bench.data.roots import resolve_root
from vpr_bench.errors import DataError
from vpr_bench.specs import DatasetSpec


def _spec(default: str = "") -> DatasetSpec:
    return DatasetSpec("demo", 1, ("test",), load="x.y:z", default_root=default)


def test_lookup_order(tmp_path: Path) -> None:
    (tmp_path / "env" / "demo").mkdir(parents=True)
    (tmp_path / "default").mkdir()
    env = {"VPR_BENCH_DATA": str(tmp_path / "env")}
    spec = _spec(str(tmp_path / "default"))
    assert resolve_root(spec, tmp_path, env=env) == tmp_path
    assert resolve_root(spec, None, env=env) == tmp_path / "env" / "demo"
    assert resolve_root(spec, None, env={}) == tmp_path / "default"


def test_errors_name_every_option(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"Dataset root .*nope for demo does not exist"):
        resolve_root(_spec(), tmp_path / "nope", env={})
    env = {"VPR_BENCH_DATA": str(tmp_path)}
    with pytest.raises(DataError) as info:
        resolve_root(_spec(str(tmp_path / "dflt")), None, env=env)
    message = str(info.value)
    assert f"$VPR_BENCH_DATA/demo: {tmp_path / 'demo'}" in message
    assert "--data-root PATH" in message and "set VPR_BENCH_DATA" in message
    assert str(tmp_path / "dflt") in message


def test_generated_dataset_root_is_created(tmp_path: Path) -> None:
    spec = DatasetSpec(
        "demo",
        1,
        ("test",),
        load="x.y:z",
        default_root=str(tmp_path / "cache" / "demo"),
        provides=frozenset({"generated"}),
    )
    assert resolve_root(spec, None, env={}) == tmp_path / "cache" / "demo"
    assert (tmp_path / "cache" / "demo").is_dir()
    (tmp_path / "cache" / "demo").rmdir()
    env = {"VPR_BENCH_DATA": str(tmp_path / "data")}
    assert resolve_root(spec, None, env=env) == tmp_path / "data" / "demo"  # the first candidate
