from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vpr_bench.errors import DataError, UsageError
from vpr_bench.eval.cache import DescriptorCache, default_cache_dir
from vpr_bench.protocol import ResizePolicy
from vpr_bench.specs import IMAGENET, MATCONVNET


def _unit(n: int, d: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _paths(tmp_path: Path, n: int) -> list[Path]:
    out = []
    for i in range(n):
        p = tmp_path / f"{i}.jpg"
        p.write_bytes(b"x" * (i + 1))
        out.append(p)
    return out


def test_default_dir_follows_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VPR_BENCH_CACHE", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("VPR_BENCH_CACHE")
    assert default_cache_dir() == Path("~/.cache/vpr-bench/descriptors").expanduser()


def test_key_changes_with_every_input(tmp_path: Path) -> None:
    paths = _paths(tmp_path, 3)
    cache = DescriptorCache(tmp_path / "c", model_key="m:1")
    base = cache.key(paths, ResizePolicy(), IMAGENET, "fp32")
    assert base == cache.key(list(paths), ResizePolicy(), IMAGENET, "fp32")
    variants = {
        cache.key(paths[:2], ResizePolicy(), IMAGENET, "fp32"),
        cache.key(paths, ResizePolicy.hard(480, 640), IMAGENET, "fp32"),
        cache.key(paths, ResizePolicy.hard(480, 640, interpolation="bicubic"), IMAGENET, "fp32"),
        cache.key(paths, ResizePolicy(), MATCONVNET, "fp32"),
        cache.key(paths, ResizePolicy(), IMAGENET, "bf16"),
        DescriptorCache(tmp_path / "c", model_key="m:2").key(
            paths, ResizePolicy(), IMAGENET, "fp32"
        ),
    }
    assert base not in variants and len(variants) == 6
    paths[0].write_bytes(b"changed content")  # file size changes -> new key
    assert cache.key(paths, ResizePolicy(), IMAGENET, "fp32") != base


def test_round_trip_float32_is_exact_and_memory_mapped(tmp_path: Path) -> None:
    cache = DescriptorCache(tmp_path, model_key="m")
    x = _unit(10, 8)
    assert cache.load("k" * 64, 10) is None
    with cache.writer("k" * 64, 10, 8, {"note": "t"}) as w:
        w.write(0, x[:4])
        w.write_at(np.array([9, 4, 5, 6, 7, 8]), x[[9, 4, 5, 6, 7, 8]])
    got = cache.load("k" * 64, 10)
    assert isinstance(got, np.memmap)
    np.testing.assert_array_equal(got, x)
    assert cache.path("k" * 64).with_suffix(".json").is_file()


def test_float16_storage_renormalises(tmp_path: Path) -> None:
    cache = DescriptorCache(tmp_path, model_key="m", storage="float16")
    x = _unit(5, 16, seed=3)
    with cache.writer("a" * 64, 5, 16, {}) as w:
        w.write(0, x)
    assert np.load(cache.path("a" * 64)).dtype == np.float16
    got = cache.load("a" * 64, 5)
    assert got is not None and got.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(got, x, atol=2e-3)


def test_crash_leaves_no_entry_and_no_temp(tmp_path: Path) -> None:
    cache = DescriptorCache(tmp_path, model_key="m")
    with pytest.raises(KeyboardInterrupt), cache.writer("b" * 64, 4, 2, {}) as w:
        w.write(0, np.ones((2, 2), np.float32))
        raise KeyboardInterrupt
    assert cache.load("b" * 64, 4) is None
    assert list(cache.path("b" * 64).parent.iterdir()) == []


def test_incomplete_entry_is_refused(tmp_path: Path) -> None:
    cache = DescriptorCache(tmp_path, model_key="m")
    with pytest.raises(RuntimeError, match="not every row"), cache.writer("c" * 64, 4, 2, {}) as w:
        w.write(0, np.ones((3, 2), np.float32))
    assert not cache.path("c" * 64).exists()


def test_wrong_row_count_and_dim_are_clear_errors(tmp_path: Path) -> None:
    cache = DescriptorCache(tmp_path, model_key="m")
    with cache.writer("d" * 64, 3, 2, {}) as w:
        w.write(0, np.ones((3, 2), np.float32))
    with pytest.raises(DataError, match="expected 5 rows; delete it"):
        cache.load("d" * 64, 5)
    with pytest.raises(ValueError, match="dimension"), cache.writer("e" * 64, 3, 2, {}) as w:
        w.write(0, np.ones((3, 4), np.float32))


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="model_key"):
        DescriptorCache(tmp_path, model_key="")
    with pytest.raises(UsageError, match="float32 or float16"):
        DescriptorCache(tmp_path, model_key="m", storage="int8")  # type: ignore[arg-type]
