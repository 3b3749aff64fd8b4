from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from vpr_bench.builtin.tiny_model import TinyGeMConfig, build_tiny_gem
from vpr_bench.errors import DataError
from vpr_bench.provenance import (
    collect_provenance,
    describe_device,
    distribution_versions,
    git_sha,
    peak_gpu_mb,
    peak_host_mb,
    utc_now,
)
from vpr_bench.weights import load_weights_file, sha256_file, state_dict_digest


def test_collect_provenance_fields() -> None:
    prov = collect_provenance(
        device="cpu", seed=7, config={"b": 1, "a": 2}, plugin_versions={"x": "1"}, command="cmd"
    )
    assert prov.seed == 7 and prov.command == "cmd" and prov.plugin_versions == {"x": "1"}
    assert prov.torch_version == torch.__version__
    assert prov.device.startswith("cpu (")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", prov.time_utc)
    same = collect_provenance(device="cpu", seed=7, config={"a": 2, "b": 1})
    assert same.config_hash == prov.config_hash and len(prov.config_hash) == 16
    assert collect_provenance(device="cpu", seed=7, config={"a": 3}).config_hash != prov.config_hash


def test_git_sha_of_this_checkout_and_outside(tmp_path: Path) -> None:
    sha = git_sha()
    assert re.fullmatch(r"[0-9a-f]{40}(-dirty)?", sha)
    assert git_sha(tmp_path) == ""


def test_memory_and_versions() -> None:
    before = peak_host_mb()
    block = np.ones(64 * 2**20 // 8)  # 64 MiB touched
    assert peak_host_mb() >= before and peak_host_mb() > 64
    del block
    assert peak_gpu_mb("cpu") == 0.0
    versions = distribution_versions(["numpy", "vpr-bench", "no-such-dist-xyz"])
    assert versions["numpy"] == np.__version__ and versions["no-such-dist-xyz"] == "?"
    assert "vpr-bench" not in versions
    assert utc_now().endswith("Z")
    assert "cores" in describe_device(torch.device("cpu"))


def test_weights_round_trip_and_sha(tmp_path: Path) -> None:
    source = build_tiny_gem(TinyGeMConfig(width=4, dim=8, seed=1))
    path = tmp_path / "w.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in source.state_dict().items()}}, path)
    target = build_tiny_gem(TinyGeMConfig(width=4, dim=8, seed=2))
    assert state_dict_digest(target) != state_dict_digest(source)
    digest = load_weights_file(target, path).sha256
    assert digest == sha256_file(path) and len(digest) == 64
    assert state_dict_digest(target) == state_dict_digest(source)


def test_weights_errors(tmp_path: Path) -> None:
    model = build_tiny_gem(TinyGeMConfig(width=4, dim=8))
    with pytest.raises(DataError, match="does not exist"):
        load_weights_file(model, tmp_path / "missing.pth")
    other = tmp_path / "other.pth"
    torch.save(build_tiny_gem(TinyGeMConfig(width=8, dim=8)).state_dict(), other)
    with pytest.raises(DataError, match="do not fit model TinyGeM"):
        load_weights_file(model, other)
    partial = tmp_path / "partial.pth"
    torch.save({"proj.weight": model.proj.weight.detach()}, partial)
    with pytest.raises(DataError, match="missing key"):
        load_weights_file(model, partial)

    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (print, ("pwned",))

    evil = tmp_path / "evil.pth"
    torch.save({"x": Evil()}, evil)
    with pytest.raises(DataError, match="refused to load"):
        load_weights_file(model, evil)
