from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from vpr_bench.builtin.tiny_model import TinyGeMConfig, build_tiny_gem
from vpr_bench.data.images import load_image
from vpr_bench.errors import UsageError, VprBenchError
from vpr_bench.eval.cache import DescriptorCache
from vpr_bench.eval.extract import extract_descriptors, extract_with_stats
from vpr_bench.protocol import ResizePolicy
from vpr_bench.specs import IMAGENET


def write_images(folder: Path, sizes: list[tuple[int, int]], seed: int = 0) -> list[Path]:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, (w, h) in enumerate(sizes):
        path = folder / f"{i:03d}.png"
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


class Counting(nn.Module):
    """Wraps a model, counting images seen and refusing batches over ``limit`` with OOM."""

    def __init__(self, inner: nn.Module, limit: int | None = None) -> None:
        super().__init__()
        self.inner = inner
        self.descriptor_dim = inner.descriptor_dim
        self.limit = limit
        self.batch_sizes: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.limit is not None and x.shape[0] > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        self.batch_sizes.append(int(x.shape[0]))
        return self.inner(x)


@pytest.fixture
def model() -> nn.Module:
    return build_tiny_gem(TinyGeMConfig(width=4, dim=16))


def _reference(model: nn.Module, paths: list[Path], policy: ResizePolicy) -> np.ndarray:
    model.eval()
    with torch.no_grad():
        rows = [model(load_image(p, policy, IMAGENET)[None])[0] for p in paths]
    return torch.stack(rows).numpy()


def test_matches_one_by_one_forward_with_mixed_sizes(tmp_path: Path, model: nn.Module) -> None:
    paths = write_images(tmp_path, [(32, 24), (24, 32), (32, 24), (40, 30), (24, 32)])
    got = extract_descriptors(model, paths, ResizePolicy(), IMAGENET, batch_size=4)
    assert got.dtype == np.float32 and got.shape == (5, 16)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(got, _reference(model, paths, ResizePolicy()), atol=1e-6)


def test_hard_resize_and_batch_independence(tmp_path: Path, model: nn.Module) -> None:
    paths = write_images(tmp_path, [(40, 30), (30, 40), (50, 20)])
    policy = ResizePolicy.hard(24, 32)
    one = extract_descriptors(model, paths, policy, IMAGENET, batch_size=1)
    three = extract_descriptors(model, paths, policy, IMAGENET, batch_size=3)
    np.testing.assert_allclose(one, three, atol=1e-6)
    np.testing.assert_allclose(one, _reference(model, paths, policy), atol=1e-6)


def test_out_of_memory_halves_the_batch(tmp_path: Path, model: nn.Module) -> None:
    paths = write_images(tmp_path, [(16, 16)] * 7)
    wrapped = Counting(model, limit=2)
    got = extract_descriptors(wrapped, paths, ResizePolicy(), IMAGENET, batch_size=8)
    assert max(wrapped.batch_sizes) == 2 and sum(wrapped.batch_sizes) == 7
    np.testing.assert_allclose(got, _reference(model, paths, ResizePolicy()), atol=1e-6)


def test_out_of_memory_at_one_image_is_a_clear_error(tmp_path: Path, model: nn.Module) -> None:
    paths = write_images(tmp_path, [(16, 16)] * 2)
    with pytest.raises(VprBenchError, match="even with one image per batch"):
        extract_descriptors(Counting(model, limit=0), paths, ResizePolicy(), IMAGENET)


def test_cache_is_reused_and_bypassable(tmp_path: Path, model: nn.Module) -> None:
    paths = write_images(tmp_path / "img", [(20, 20)] * 5)
    cache = DescriptorCache(tmp_path / "cache", model_key="tiny:test")
    wrapped = Counting(model)
    first = extract_with_stats(wrapped, paths, ResizePolicy(), IMAGENET, batch_size=2, cache=cache)
    assert not first.from_cache and first.images_per_s > 0 and sum(wrapped.batch_sizes) == 5
    second = extract_with_stats(wrapped, paths, ResizePolicy(), IMAGENET, cache=cache)
    assert second.from_cache and sum(wrapped.batch_sizes) == 5
    # the hit reports the time measured when the entry was written, not 0 (a rerun's record
    # keeps its speed column)
    assert second.seconds == first.seconds > 0 and second.images_per_s == first.images_per_s
    np.testing.assert_array_equal(second.descriptors, first.descriptors)
    extract_with_stats(wrapped, paths, ResizePolicy(), IMAGENET, precision="bf16", cache=cache)
    assert sum(wrapped.batch_sizes) == 10  # another precision is another entry
    extract_with_stats(wrapped, paths, ResizePolicy(), IMAGENET, cache=None)
    assert sum(wrapped.batch_sizes) == 15


def test_bf16_on_cpu_is_close_to_fp32(tmp_path: Path, model: nn.Module) -> None:
    paths = write_images(tmp_path, [(32, 32)] * 3)
    fp32 = extract_descriptors(model, paths, ResizePolicy(), IMAGENET)
    bf16 = extract_descriptors(model, paths, ResizePolicy(), IMAGENET, precision="bf16")
    assert bf16.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(bf16, axis=1), 1.0, atol=1e-6)
    assert np.abs(bf16 - fp32).max() < 0.05


def test_restores_training_mode(tmp_path: Path, model: nn.Module) -> None:
    paths = write_images(tmp_path, [(16, 16)])
    model.train()
    extract_descriptors(model, paths, ResizePolicy(), IMAGENET)
    assert model.training


def test_bad_settings_are_usage_errors(tmp_path: Path, model: nn.Module) -> None:
    paths = write_images(tmp_path, [(16, 16)])
    with pytest.raises(UsageError, match="fp16 needs a CUDA device"):
        extract_descriptors(model, paths, ResizePolicy(), IMAGENET, precision="fp16")
    with pytest.raises(UsageError, match="Unknown precision 'int8'"):
        extract_descriptors(model, paths, ResizePolicy(), IMAGENET, precision="int8")
    with pytest.raises(UsageError, match="batch_size must be >= 1"):
        extract_descriptors(model, paths, ResizePolicy(), IMAGENET, batch_size=0)
    with pytest.raises(UsageError, match="descriptor_dim"):
        extract_descriptors(nn.Identity(), paths, ResizePolicy(), IMAGENET)


def test_wrong_declared_dim_is_caught(tmp_path: Path, model: nn.Module) -> None:
    paths = write_images(tmp_path, [(16, 16)])
    model.descriptor_dim = 8  # type: ignore[assignment]
    with pytest.raises(VprBenchError, match="declares descriptor_dim=8 but returned 16"):
        extract_descriptors(model, paths, ResizePolicy(), IMAGENET)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(
    tmp_path: Path, model: nn.Module, monkeypatch: pytest.MonkeyPatch
) -> None:
    # cuDNN convolutions default to TF32 on Ampere and later; compare true float32.
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    paths = write_images(tmp_path, [(64, 48)] * 6)
    cpu = extract_descriptors(model, paths, ResizePolicy(), IMAGENET)
    gpu = extract_descriptors(model, paths, ResizePolicy(), IMAGENET, device="cuda")
    np.testing.assert_allclose(gpu, cpu, atol=1e-4)
    half = extract_descriptors(
        model, paths, ResizePolicy(), IMAGENET, device="cuda", precision="fp16"
    )
    assert np.abs(half - cpu).max() < 0.05
