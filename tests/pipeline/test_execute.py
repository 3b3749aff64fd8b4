"""``vpr-bench run`` resolves once: one config per method, one read per split, one model each."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from vpr_bench import registry
from vpr_bench.cli import main
from vpr_bench.data.synthcity import prepare
from vpr_bench.records import read_record


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepare(tmp_path_factory.mktemp("data"), "tiny", seed=0, progress=False)


def _counting(monkeypatch: pytest.MonkeyPatch, module: Any, name: str, calls: Counter[str]) -> None:
    original = getattr(module, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        key = name
        if name == "load_split":
            key = f"read {args[1]}"
        elif name == "resolve_experiment":
            key = f"resolve {args[0].name}"
        elif name == "build_netvlad":
            key = "build netvlad"
        calls[key] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)


def test_one_run_resolves_each_method_once_and_reads_each_split_once(
    city: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import vpr_bench
    import vpr_bench.experiment
    import vpr_bench.pipeline.plan
    import vpr_bench_netvlad.model
    from vpr_bench.data.synthcity import spec

    calls: Counter[str] = Counter()
    monkeypatch.setattr(registry, "_resolved", {})  # lazy targets are looked up afresh
    _counting(monkeypatch, spec, "load_split", calls)
    _counting(monkeypatch, vpr_bench_netvlad.model, "build_netvlad", calls)
    for module in (vpr_bench.experiment, vpr_bench.pipeline.plan, vpr_bench):
        _counting(monkeypatch, module, "resolve_experiment", calls)
    args = ["run", "--plugins", "netvlad,sare", "--dataset", "synthcity", "--profile", "quick"]
    args += ["--data-root", str(city), "--train-root", str(city), "--no-cache"]
    args += ["--leaderboards", str(tmp_path / "lb"), "--runs-dir", str(tmp_path / "runs")]
    args += ["--set", "trainer.epochs=1", "--set", "trainer.cache_queries=100"]
    args += ["--set", "model.init_images=20", "--set", "trainer.val_every=0"]
    # Small enough for the default suite: a narrow trunk, 4 clusters, 48x64 training images.
    for key in ("model.tiny_width=4", "model.num_clusters=4", "trainer.height=48"):
        args += ["--set", key]
    args += ["--set", "trainer.width=64", "--set", "trainer.neg_pool=20"]
    assert main(args) == 0
    expected = ["netvlad", "sare", "sare-joint"]
    assert calls == Counter(
        {
            **{f"resolve {m}": 1 for m in expected},
            "read train": 1,  # baseline initialisation, training and PCA share one read
            "read test": 1,
            "read val": 1,  # the quick profile selects on synthcity-val
            "build netvlad": len(expected),  # one model per method, trained where it was built
        }
    )
    records = sorted((tmp_path / "lb" / "records" / "synthcity").rglob("*.json"))
    names = sorted(read_record(r).method for r in records)
    assert names == sorted(["netvlad", *expected])  # one untrained netvlad baseline
