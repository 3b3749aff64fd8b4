"""Training-time extraction (mining, validation) gives a domain model each image's label."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.eval.test_extract import write_images
from tests.eval.test_extract_domains import PerDomain
from tests.train.synth import VAL_PROTOCOL, make_split
from vpr_bench.builtin.tiny_model import TinyGeMConfig, build_tiny_gem
from vpr_bench.errors import UsageError
from vpr_bench.specs import IMAGENET
from vpr_bench.train.images import ImageTensors, training_descriptors
from vpr_bench.train.validate import validate

CPU = torch.device("cpu")


def _images(tmp_path: Path, labels: list[str | None] | None, n: int = 6) -> ImageTensors:
    paths = write_images(tmp_path, [(32, 24)] * n)
    return ImageTensors(paths, IMAGENET, (24, 32), domains=labels)


def test_each_index_goes_through_its_domain_and_keeps_its_place(tmp_path: Path) -> None:
    labels: list[str | None] = ["night", "day", None, "dusk", "night", "day"]
    images = _images(tmp_path, labels)
    model = PerDomain(("day", "dusk", "night"))
    order = [5, 0, 3, 4, 2]  # a subset, out of order, as a miner's chunk
    got = training_descriptors(model, images, order, device=CPU, batch_size=2)
    # one pass per domain in order of first appearance (None is the reference, day)
    assert model.calls == [("day", 2), ("night", 2), ("dusk", 1)]
    assert model.training  # restored after extraction in eval mode
    model.eval()
    with torch.no_grad():
        for row, index in enumerate(order):
            domain = labels[index] or "day"
            expected = model(images.batch([index]), domain=domain)[0]
            torch.testing.assert_close(got[row], expected, rtol=1e-5, atol=1e-6)


def test_unknown_label_is_refused_with_the_models_domains(tmp_path: Path) -> None:
    images = _images(tmp_path, ["day", "fog", "day", "day", "day", "day"])
    with pytest.raises(UsageError, match="no domain 'fog'; its domains are day, night"):
        training_descriptors(PerDomain(("day", "night")), images, range(6), device=CPU)


def test_models_without_domains_ignore_labels_and_batch_in_order(tmp_path: Path) -> None:
    images = _images(tmp_path, ["night", "day", "night", "day", "night", "day"])
    plain = build_tiny_gem(TinyGeMConfig(width=4, dim=8, seed=0))
    got = training_descriptors(plain, images, [4, 1, 2], device=CPU, batch_size=2)
    plain.eval()
    with torch.no_grad():
        torch.testing.assert_close(got, plain(images.batch([4, 1, 2])), rtol=1e-5, atol=1e-6)


def test_label_count_must_match_the_images(tmp_path: Path) -> None:
    paths = write_images(tmp_path, [(32, 24)] * 3)
    with pytest.raises(ValueError, match="2 domain labels for 3 images"):
        ImageTensors(paths, IMAGENET, None, domains=["day", "night"])


def test_validation_passes_query_conditions_and_the_reference_for_the_database(
    tmp_path: Path,
) -> None:
    split = make_split(tmp_path, "val", seed=3, n_db=5, n_q=3, protocol=VAL_PROTOCOL)
    model = PerDomain(("day", "night"))
    metrics = validate(model, split, IMAGENET, size=None, device=CPU, batch_size=8)
    # queries are labelled night by the split; database images carry no label: the reference
    assert model.calls == [("night", 3), ("day", 5)]
    assert set(metrics) == {"R@1", "R@5"}
