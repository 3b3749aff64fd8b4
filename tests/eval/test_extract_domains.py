"""Domain-labelled extraction: a model declaring domains gets each image's label, per domain."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from tests.eval.test_extract import write_images
from vpr_bench.builtin.tiny_model import TinyGeMConfig, build_tiny_gem
from vpr_bench.data.split import ImageRecord
from vpr_bench.errors import UsageError
from vpr_bench.eval.cache import DescriptorCache
from vpr_bench.eval.extract import (
    check_domains,
    extract_descriptors,
    extract_with_stats,
    image_domains,
    model_domains,
)
from vpr_bench.protocol import ResizePolicy
from vpr_bench.specs import IMAGENET

POLICY = ResizePolicy.hard(24, 32)


class PerDomain(nn.Module):
    """One tiny model per domain; records the domain and size of every batch."""

    def __init__(self, labels: tuple[str, ...]) -> None:
        super().__init__()
        self.nets = nn.ModuleList(
            build_tiny_gem(TinyGeMConfig(width=4, dim=8, seed=i)) for i in range(len(labels))
        )
        self.domains = labels
        self.descriptor_dim = 8
        self.calls: list[tuple[str | None, int]] = []

    def forward(self, x: torch.Tensor, domain: str | None = None) -> torch.Tensor:
        self.calls.append((domain, int(x.shape[0])))
        index = 0 if domain is None else self.domains.index(domain)
        return self.nets[index](x)  # type: ignore[no-any-return]


def _one_by_one(model: PerDomain, paths: list[Path], labels: list[str]) -> np.ndarray:
    from vpr_bench.data.images import load_image

    model.eval()
    with torch.no_grad():
        rows = [
            model(load_image(p, POLICY, IMAGENET)[None], domain=d)[0]
            for p, d in zip(paths, labels, strict=True)
        ]
    return torch.nn.functional.normalize(torch.stack(rows), dim=1).numpy()


def test_each_image_goes_through_its_domain_in_one_pass_per_domain(tmp_path: Path) -> None:
    paths = write_images(tmp_path, [(32, 24)] * 7)
    labels = ["night", "day", "night", "dusk", "day", "night", "dusk"]
    model = PerDomain(("day", "dusk", "night"))
    got = extract_descriptors(model, paths, POLICY, IMAGENET, batch_size=2, domains=labels)
    # one pass per domain, in order of first appearance: 3 night (2 + 1), 2 day, 2 dusk
    assert model.calls == [("night", 2), ("night", 1), ("day", 2), ("dusk", 2)]
    np.testing.assert_allclose(got, _one_by_one(model, paths, labels), rtol=1e-5, atol=1e-6)
    as_day = extract_descriptors(model, paths, POLICY, IMAGENET, domains=["day"] * 7)
    assert not np.allclose(got[0], as_day[0], atol=1e-3)  # the domains' encoders differ


def test_unknown_label_lists_the_models_domains(tmp_path: Path) -> None:
    paths = write_images(tmp_path, [(32, 24)] * 2)
    model = PerDomain(("day", "night"))
    with pytest.raises(UsageError, match="no domain 'fog'; its domains are day, night"):
        extract_descriptors(model, paths, POLICY, IMAGENET, domains=["day", "fog"])


def test_none_is_the_reference_and_models_without_domains_ignore_labels(tmp_path: Path) -> None:
    paths = write_images(tmp_path, [(32, 24)] * 3)
    model = PerDomain(("day", "night"))
    with_none = extract_descriptors(model, paths, POLICY, IMAGENET, domains=[None, None, "night"])
    explicit = extract_descriptors(model, paths, POLICY, IMAGENET, domains=["day", "day", "night"])
    np.testing.assert_array_equal(with_none, explicit)
    plain = build_tiny_gem(TinyGeMConfig(width=4, dim=8))
    assert model_domains(plain) == ()
    a = extract_descriptors(plain, paths, POLICY, IMAGENET, domains=["x", "y", "z"])
    np.testing.assert_array_equal(a, extract_descriptors(plain, paths, POLICY, IMAGENET))


def test_cache_key_includes_the_labels(tmp_path: Path) -> None:
    paths = write_images(tmp_path / "img", [(32, 24)] * 2)
    cache = DescriptorCache(tmp_path / "cache", model_key="per-domain")
    model = PerDomain(("day", "night"))
    first = extract_with_stats(model, paths, POLICY, IMAGENET, cache=cache, domains=["day", "day"])
    other = extract_with_stats(
        model, paths, POLICY, IMAGENET, cache=cache, domains=["night", "day"]
    )
    again = extract_with_stats(model, paths, POLICY, IMAGENET, cache=cache, domains=["day", "day"])
    assert not first.from_cache and not other.from_cache and again.from_cache
    assert not np.allclose(first.descriptors[0], other.descriptors[0])
    plain_key = cache.key(paths, POLICY, IMAGENET, "fp32")
    assert plain_key == cache.key(paths, POLICY, IMAGENET, "fp32", None)
    assert plain_key != cache.key(paths, POLICY, IMAGENET, "fp32", ["day", "day"])


def test_image_domains_prefers_domain_then_condition() -> None:
    records = [
        ImageRecord(Path("a"), domain="3", condition="night"),
        ImageRecord(Path("b"), condition="night"),
        ImageRecord(Path("c")),
    ]
    assert image_domains(records) == ("3", "night", None)
    check_domains(PerDomain(("3", "night")), image_domains(records))
