"""The ``disam`` retrieval model: per-domain encoders, descriptors, resizing and domains."""

from __future__ import annotations

import math

import pytest
import torch

from vpr_bench.errors import ConfigError
from vpr_bench.testing import ModelConformance
from vpr_bench_disam.config import DisamConfig
from vpr_bench_disam.metrics import mean_cos, plain_cos, retrieval_distances
from vpr_bench_disam.model import build_disam, build_translators, check_domains

SMALL = {"n_domains": 3, "ngf": 4, "netg_blocks": 3, "image_size": 16}


def _small(**extra: object) -> DisamConfig:
    return DisamConfig(**{**SMALL, **extra})  # type: ignore[arg-type]


class TestDisamConformance(ModelConformance):
    plugins = ("vpr_bench_disam.plugin",)
    model_name = "disam"
    model_overrides = SMALL
    input_size = (20, 24)


def test_descriptor_dim_and_latent_shape() -> None:
    model = build_disam(_small()).eval()
    assert model.descriptor_dim == 16 * 4 * 4
    assert model.latent(torch.randn(2, 3, 30, 40)).shape == (2, 16, 4, 4)
    released = DisamConfig()
    assert released.latent_shape == (256, 64, 64)
    assert math.prod(released.latent_shape) == 1_048_576


@pytest.mark.parametrize("kind", ["mean-cos", "cos"])
def test_descriptor_dot_is_the_reference_similarity(kind: str) -> None:
    model = build_disam(_small(descriptor=kind)).eval()
    images = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        codes = model.latent(images, 1).double()
        desc = model(images, 1).double()
    sim = mean_cos if kind == "mean-cos" else plain_cos
    expected = torch.stack([sim(codes[i : i + 1].expand_as(codes), codes) for i in range(4)])
    torch.testing.assert_close(desc @ desc.T, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(
        desc.norm(dim=1), torch.ones(4, dtype=torch.float64), atol=1e-6, rtol=0
    )
    # L2 ranking of the descriptors is the reference's -similarity ranking
    dist = retrieval_distances(codes[:1], codes, kind)
    assert torch.equal(torch.cdist(desc[:1], desc).argsort(), dist.argsort())


def test_domains_pick_their_encoder() -> None:
    model = build_disam(_small(domains=("day", "dusk", "night"))).eval()
    images = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        by_label = [model(images, d) for d in ("day", "dusk", "night")]
        by_index = [model(images, i) for i in range(3)]
        default = model(images)
    for a, b in zip(by_label, by_index, strict=True):
        assert torch.equal(a, b)
    assert torch.equal(default, by_label[0])
    assert not torch.allclose(by_label[0], by_label[1])


def test_unknown_domain_lists_the_models_domains() -> None:
    model = build_disam(_small(domains=("day", "dusk", "night")))
    with pytest.raises(ConfigError, match=r"'fog' is not one of .*day, dusk, night"):
        model(torch.randn(1, 3, 16, 16), "fog")
    with pytest.raises(ConfigError, match="3 domains"):
        model.domain_index(3)


def test_forward_resizes_bicubic_to_image_size() -> None:
    model = build_disam(_small()).eval()
    images = torch.rand(1, 3, 24, 32)
    resized = torch.nn.functional.interpolate(
        images, size=(16, 16), mode="bicubic", align_corners=False, antialias=True
    )
    with torch.no_grad():
        assert torch.equal(model(images), model(resized))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"n_domains": 1}, "model.n_domains"),
        ({"image_size": 18}, "divisible by 4"),
        ({"descriptor": "l2"}, "model.descriptor"),
        ({"domains": ("a", "b")}, "lists 2 labels"),
        ({"domains": ("a", "a", "b")}, "repeats"),
    ],
)
def test_bad_options(overrides: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _small(**overrides)


def test_check_domains_refuses_another_count() -> None:
    model = build_disam(_small())
    with pytest.raises(ConfigError, match="has 2 domains .* DISAM model has 3"):
        check_domains(model, ["0", "1"], "dataset x")
    check_domains(model, ["0", "1", "2"], "dataset x")


def test_build_is_seeded_and_translators_fit() -> None:
    a, b = build_disam(_small(seed=3)), build_disam(_small(seed=3))
    for (n, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(p, q), n
    decoders, discriminators = build_translators(_small(), ndf=4, seed=1)
    assert len(decoders) == len(discriminators) == 3
    code = a.latent(torch.randn(1, 3, 16, 16), 2)
    assert decoders[2](code).shape == (1, 3, 16, 16)
    assert len(discriminators[0](decoders[0](code))) == 4


class TestDisamC2FConformance(ModelConformance):
    plugins = ("vpr_bench_disam.plugin",)
    model_name = "disam-c2f"
    model_overrides = {**SMALL, "top_n": 2}
    input_size = (20, 24)


def test_c2f_holds_a_coarse_and_a_fine_model() -> None:
    from vpr_bench_disam.config import DisamC2FConfig
    from vpr_bench_disam.model import build_disam_c2f

    model = build_disam_c2f(DisamC2FConfig(**SMALL)).eval()
    assert model.top_n == 3 and model.domains == ("0", "1", "2")
    assert model.coarse.config.descriptor == "mean-cos"
    assert model.fine.config.descriptor == "cos"
    images = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(model(images, 2), model.coarse(images, 2))
        assert torch.equal(model.second_stage(images, 2), model.fine(images, 2))
        assert not torch.allclose(model.coarse.latent(images), model.fine.latent(images))
    with pytest.raises(ConfigError, match="model.fine_descriptor"):
        DisamC2FConfig(**SMALL, fine_descriptor="l2")


def test_same_init_starts_every_domain_alike() -> None:
    model = build_disam(_small(same_init=True)).eval()
    images = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(model(images, 0), model(images, 2))
    assert not torch.equal(
        build_disam(_small()).encoders[1].model[1].weight,
        build_disam(_small()).encoders[0].model[1].weight,
    )
