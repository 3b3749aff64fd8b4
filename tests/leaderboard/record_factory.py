"""Build real EvalRecord objects (and write them where they belong) for leaderboard tests."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vpr_bench.protocol import EvalProtocol, ResizePolicy
from vpr_bench.records import EvalRecord, Provenance, Timing, record_path, write_record

PITTS_V1 = EvalProtocol(
    "pitts30k-test",
    split="test",
    db_resize=ResizePolicy.hard(480, 640),
    query_resize=ResizePolicy.hard(480, 640),
)
PITTS_V2 = EvalProtocol(
    "pitts30k-test",
    version=2,
    split="test",
    db_resize=ResizePolicy.hard(480, 640),
    query_resize=ResizePolicy.shorter_side(480),
)
SYNTH = EvalProtocol("synthcity-test", split="test")


def make_record(
    *,
    method: str = "netvlad",
    tag: str = "run1",
    benchmark: str = "pittsburgh",
    dataset: str = "pitts30k",
    dataset_version: int = 1,
    split: str = "test",
    protocol: EvalProtocol = PITTS_V1,
    metrics: Mapping[str, float] | None = None,
    per_condition: Mapping[str, Mapping[str, float]] | None = None,
    trained_on: str = "msls-train",
    profile: str = "paper",
    dim: int = 4096,
    images_per_s: float = 123.4,
    device: str = "cpu (2 cores)",
    leaderboard: bool = True,
    plugin_versions: Mapping[str, str] | None = None,
    time_utc: str = "2024-01-01T00:00:00Z",
) -> EvalRecord:
    """A complete record; every field a leaderboard reads can be set."""
    provenance = Provenance(
        vpr_bench_version="0.1.0",
        plugin_versions=dict(plugin_versions or {"vpr-bench-netvlad": "0.1.0"}),
        torch_version="2.14.1",
        cuda_version="",
        faiss_version="1.8.0",
        device=device,
        git_sha="abc123",
        time_utc=time_utc,
        seed=0,
        config_hash="cafe",
        command=f"vpr-bench eval --method {method} --dataset {dataset}-{split}",
    )
    timing = Timing(
        extraction_s=10.0,
        images_per_s=images_per_s,
        search_s=0.5,
        search_ms_per_query=1.0,
        peak_host_mb=100.0,
        peak_gpu_mb=0.0,
    )
    return EvalRecord(
        benchmark=benchmark,
        method=method,
        checkpoint_tag=tag,
        profile=profile,
        weights_sha256="",
        dataset=dataset,
        dataset_version=dataset_version,
        split=split,
        protocol=protocol.to_dict(),
        protocol_digest=protocol.digest(),
        metrics=dict(metrics if metrics is not None else {"R@1": 80.0, "R@5": 90.0, "R@10": 95.0}),
        per_condition={k: dict(v) for k, v in (per_condition or {}).items()},
        counts={"n_queries": 10, "n_scored": 10, "n_without_positive": 0, "n_database": 100},
        descriptor_dim=dim,
        trained_on=trained_on,
        config={"seed": 0},
        provenance=provenance,
        timing=timing,
        leaderboard=leaderboard,
    )


def put(root: Path, **kwargs: Any) -> Path:
    """Write ``make_record(**kwargs)`` at its canonical place under ``root``; return the path."""
    record = make_record(**kwargs)
    return write_record(record, record_path(root, record))
