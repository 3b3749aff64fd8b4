"""Records: atomic JSON round trip, strict reading, schema migrations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vpr_bench import records
from vpr_bench.errors import RecordError
from vpr_bench.protocol import EvalProtocol
from vpr_bench.records import EvalRecord, Provenance, Timing, read_record, record_path, write_record


def make_record(**changes: object) -> EvalRecord:
    protocol = EvalProtocol("synthcity-test")
    values: dict[str, object] = dict(
        benchmark="synthcity",
        method="netvlad",
        checkpoint_tag="quick-run",
        profile="quick",
        weights_sha256="ab" * 32,
        dataset="synthcity",
        dataset_version=1,
        split="test",
        protocol=protocol.to_dict(),
        protocol_digest=protocol.digest(),
        metrics={"R@1": 81.25, "R@5": 90.0},
        per_condition={"night": {"R@1": 70.0}},
        counts={"n_queries": 16, "n_scored": 16, "n_without_positive": 0, "n_database": 40},
        descriptor_dim=256,
        trained_on="synthcity-train",
        config={"seed": 0, "trainer": {"lr": 0.001}},
        provenance=Provenance(
            vpr_bench_version="0.1.0",
            plugin_versions={"vpr-bench-netvlad": "0.1.0"},
            torch_version="2.14.1",
            cuda_version="",
            faiss_version="1.9.0",
            device="cpu",
            git_sha="",
            time_utc="2026-11-22T00:00:00Z",
            seed=0,
            config_hash="0123456789abcdef",
            command="vpr-bench eval netvlad --dataset synthcity",
        ),
        timing=Timing(1.5, 100.0, 0.01, 0.6, 512.0, 0.0),
    )
    values.update(changes)
    return EvalRecord(**values)  # type: ignore[arg-type]


def test_round_trip_is_exact(tmp_path: Path) -> None:
    record = make_record()
    path = write_record(record, record_path(tmp_path, record))
    assert path == tmp_path / "synthcity" / "netvlad.quick-run" / "synthcity.test.json"
    assert read_record(path) == record
    assert record.protocol_key == "synthcity-test@v1"


def test_write_leaves_no_temp_files(tmp_path: Path) -> None:
    write_record(make_record(), tmp_path / "r.json")
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_unknown_key_is_named(tmp_path: Path) -> None:
    path = write_record(make_record(), tmp_path / "r.json")
    raw = json.loads(path.read_text())
    raw["timing"]["gpu_temp"] = 80
    path.write_text(json.dumps(raw))
    with pytest.raises(RecordError, match=r"r\.json: unknown key timing\.'gpu_temp'"):
        read_record(path)


def test_missing_key_is_named(tmp_path: Path) -> None:
    path = write_record(make_record(), tmp_path / "r.json")
    raw = json.loads(path.read_text())
    del raw["metrics"]
    path.write_text(json.dumps(raw))
    with pytest.raises(RecordError, match="missing key 'metrics'"):
        read_record(path)


def test_not_json_and_newer_schema(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(RecordError, match="bad.json: not a readable JSON record"):
        read_record(bad)
    path = write_record(make_record(), tmp_path / "r.json")
    raw = json.loads(path.read_text())
    raw["schema_version"] = records.SCHEMA_VERSION + 1
    path.write_text(json.dumps(raw))
    with pytest.raises(RecordError, match="newer than this vpr-bench understands"):
        read_record(path)


def test_older_schema_is_migrated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Simulate a schema bump: version 2 renamed "profile" to "recipe"'s successor. Records of
    # version 1 on disk must be read through the registered upgrade.
    def upgrade_v1(raw: dict[str, object]) -> dict[str, object]:
        raw = dict(raw)
        raw["profile"] = str(raw.pop("recipe"))
        return raw

    path = write_record(make_record(), tmp_path / "r.json")
    raw = json.loads(path.read_text())
    raw["recipe"] = raw.pop("profile")
    raw["schema_version"] = 0
    path.write_text(json.dumps(raw))
    with pytest.raises(RecordError, match="no migration is registered"):
        read_record(path)
    monkeypatch.setitem(records.MIGRATIONS, 0, upgrade_v1)
    assert read_record(path).profile == "quick"


def test_invalid_metric_is_rejected() -> None:
    with pytest.raises(RecordError, match="metric 'R@1' must be a number"):
        make_record(metrics={"R@1": float("nan")})


def test_a_schema_1_record_reads_with_unknown_data_at_its_old_path(tmp_path: Path) -> None:
    """Records written before data identities (schema 1) stay readable and where they were."""
    import json

    record = make_record()
    path = write_record(record, record_path(tmp_path, record))
    raw = json.loads(path.read_text())
    del raw["data"]
    raw["schema_version"] = 1
    path.write_text(json.dumps(raw))
    old = read_record(path)
    assert old.data == {} and old.schema_version == 2 and record_path(tmp_path, old) == path


def test_a_record_with_its_data_identity_is_filed_under_it(tmp_path: Path) -> None:
    record = make_record(data={"name": "synthcity-small", "digest": "0123456789abcdef"})
    path = write_record(record, record_path(tmp_path, record))
    assert path.name == "synthcity.test.synthcity-small-01234567.json"
    assert read_record(path) == record
