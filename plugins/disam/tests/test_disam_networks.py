"""DISAM networks: the reference state-dict layout (manifest_disam.json), shapes, blur, LSGAN."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from vpr_bench_disam.networks import (
    Decoder,
    Discriminator,
    Encoder,
    blur_kernel,
    gan_loss,
    init_weights,
    luminance,
)


@pytest.fixture(scope="module")
def manifest(oracles_dir: Path) -> dict:
    return json.loads((oracles_dir / "manifest_disam.json").read_text())


def _layout(net: torch.nn.Module) -> list[tuple[str, list[int]]]:
    return [(name, list(t.shape)) for name, t in net.state_dict().items()]


@pytest.mark.parametrize(
    ("part", "build"),
    [
        ("encoder", lambda: Encoder(64, 4)),
        ("decoder", lambda: Decoder(64, 5)),
        ("discriminator", lambda: Discriminator(64, 4)),
    ],
)
def test_state_dict_layout_is_the_references(manifest: dict, part: str, build) -> None:
    """Names, order and shapes equal define_G / define_D's (params only; no buffers saved)."""
    expected = [(e["name"], e["shape"]) for e in manifest[part]["entries"]]
    net = build()
    assert _layout(net) == expected
    assert sum(t.numel() for t in net.state_dict().values()) == sum(
        int(np.prod(s)) for _, s in expected
    )
    if part == "encoder":
        assert manifest["encoder"]["n_values"] == sum(p.numel() for p in net.parameters())


def test_prelu_has_one_parameter_everywhere() -> None:
    for net in (Encoder(8, 2), Decoder(8, 2), Discriminator(8, 4)):
        prelus = [m for m in net.modules() if isinstance(m, torch.nn.PReLU)]
        assert prelus and all(m.weight.numel() == 1 for m in prelus)
        assert all(m.weight.item() == 0.25 for m in prelus)


def test_shapes_small() -> None:
    torch.manual_seed(0)
    enc, dec, disc = Encoder(8, 2), Decoder(8, 3), Discriminator(8, 4)
    x = torch.randn(2, 3, 32, 32)
    code = enc(x)
    assert code.shape == (2, 32, 8, 8)
    image = dec(code)
    assert image.shape == (2, 3, 32, 32) and image.abs().max() <= 1
    maps = disc(image)
    assert len(maps) == 4
    # kernel 4, padding 2: the stride-2 stages give 17 (no map), 9, 5, 3; the last stage's two
    # stride-1 convolutions 4 then 5. Gray and RGB maps are stacked along the height.
    assert [tuple(m.shape) for m in maps] == [(2, 18, 9), (2, 10, 5), (2, 6, 3), (2, 10, 5)]


def test_blur_kernel_is_scipys_filtered_impulse() -> None:
    kernel = blur_kernel()
    dirac = np.zeros((5, 5))
    dirac[2, 2] = 1
    np.testing.assert_array_equal(kernel, gaussian_filter(dirac, 3, mode="reflect"))
    assert kernel.shape == (5, 5)
    np.testing.assert_allclose(kernel.sum(), 1.0, rtol=1e-12)
    np.testing.assert_allclose(kernel, kernel.T)
    # reflect folding makes the kernel flatter than a sampled Gaussian of sigma 3
    assert kernel[2, 2] < 0.06 and kernel[0, 0] > 0.02


def test_discriminator_blur_is_depthwise_with_zero_padding() -> None:
    disc = Discriminator(4, 2)
    x = torch.randn(1, 3, 7, 9, dtype=torch.float64)
    blurred = disc.blur(x)
    k = blur_kernel()
    padded = np.pad(x[0].numpy(), ((0, 0), (2, 2), (2, 2)))
    expected = np.zeros((3, 7, 9))
    for c in range(3):
        for i in range(7):
            for j in range(9):
                expected[c, i, j] = (padded[c, i : i + 5, j : j + 5] * k).sum()
    np.testing.assert_allclose(blurred[0].numpy(), expected, rtol=1e-6, atol=1e-7)


def test_luminance() -> None:
    x = torch.tensor([[[[1.0]], [[2.0]], [[3.0]]]])
    assert luminance(x).item() == pytest.approx(0.299 + 2 * 0.587 + 3 * 0.114)


def test_gan_loss_hand_case() -> None:
    """Weights 1, 2, 3, 5 over 4 maps, divided by 11 * 4 = 44."""
    maps = [torch.full((1, 2, 2), v) for v in (0.0, 0.5, 1.0, 2.0)]
    real = (1 * 1.0 + 2 * 0.25 + 3 * 0.0 + 5 * 1.0) / 44
    fake = (1 * 0.0 + 2 * 0.25 + 3 * 1.0 + 5 * 4.0) / 44
    assert gan_loss(maps, real=True).item() == pytest.approx(real)
    assert gan_loss(maps, real=False).item() == pytest.approx(fake)


def test_init_weights() -> None:
    torch.manual_seed(0)
    enc = Encoder(16, 1)
    init_weights(enc)
    conv = enc.model[1]
    assert conv.bias.abs().max() == 0
    assert abs(conv.weight.std().item() - 0.02) < 0.003
