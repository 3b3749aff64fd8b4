"""The NetVLAD layer and its initialisation against OpenIBL's and pytorch-NetVlad's outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from vpr_bench_netvlad.layer import NetVLAD, vlad_to_descriptor

RTOL, ATOL = 1e-8, 1e-9  # float64 tolerances of the oracle README


def _close(actual: torch.Tensor | float, expected: np.ndarray) -> None:
    value = actual.detach().cpu().numpy() if isinstance(actual, torch.Tensor) else actual
    np.testing.assert_allclose(value, expected, rtol=RTOL, atol=ATOL)


def _layer(data: dict[str, np.ndarray], variant: str = "openibl") -> NetVLAD:
    k, d = data["clsts"].shape
    layer = NetVLAD(k, d, variant=variant).double()  # type: ignore[arg-type]
    layer.init_from_clusters(data["clsts"], data["traindescs"])
    return layer


def _case(path: Path, case: str) -> dict[str, np.ndarray]:
    with np.load(path) as npz:
        return {k.split("__", 1)[1]: npz[k] for k in npz.files if k.startswith(f"{case}__")}


@pytest.mark.parametrize("case", ["small", "real"])
def test_openibl_init_and_forward(oracles_dir: Path, case: str) -> None:
    data = _case(oracles_dir / "netvlad_openibl.npz", case)
    layer = _layer(data)
    _close(layer.alpha, data["alpha"])
    _close(layer.conv.weight[:, :, 0, 0], data["conv_weight"])
    _close(layer.centroids, data["clsts"])
    assert layer.conv.bias is None
    vlad = layer(torch.from_numpy(data["x"]))
    _close(vlad, data["vlad_raw"])
    _close(vlad_to_descriptor(vlad), data["desc"])


def test_openibl_gradients(oracles_dir: Path) -> None:
    data = _case(oracles_dir / "netvlad_openibl.npz", "small")
    layer = _layer(data)
    x = torch.from_numpy(data["x"]).requires_grad_(True)
    desc = vlad_to_descriptor(layer(x))
    (desc * torch.from_numpy(data["grad_probe"])).sum().backward()
    _close(x.grad, data["grad_x"])  # type: ignore[arg-type]
    _close(layer.centroids.grad, data["grad_centroids"])  # type: ignore[arg-type]
    _close(layer.conv.weight.grad[:, :, 0, 0], data["grad_conv_weight"])  # type: ignore[index]


@pytest.mark.parametrize(("case", "variant"), [("v1", "openibl"), ("v2", "nanne-v2")])
def test_nanne_variants(oracles_dir: Path, case: str, variant: str) -> None:
    data = _case(oracles_dir / "netvlad_nanne.npz", case)
    layer = _layer(data, variant)
    _close(layer.alpha, data["alpha"])
    _close(layer.conv.weight[:, :, 0, 0], data["conv_weight"])
    _close(layer.centroids, data["centroids"])
    x = torch.from_numpy(data["x"]).requires_grad_(True)
    desc = vlad_to_descriptor(layer(x))
    _close(desc, data["desc"])
    (desc * torch.from_numpy(data["grad_probe"])).sum().backward()
    _close(x.grad, data["grad_x"])  # type: ignore[arg-type]
    _close(layer.centroids.grad, data["grad_centroids"])  # type: ignore[arg-type]
    _close(layer.conv.weight.grad[:, :, 0, 0], data["grad_conv_weight"])  # type: ignore[index]
    if variant == "nanne-v2":
        assert layer.conv.bias is not None
        _close(layer.conv.bias, data["conv_bias"])
        _close(layer.conv.bias.grad, data["grad_conv_bias"])  # type: ignore[arg-type]
    else:
        assert layer.conv.bias is None


def test_hand_computed_single_location() -> None:
    # One location, two clusters: the assignment is a 2-way softmax of the logits and the
    # residual of cluster k is a_k * (x - c_k).
    layer = NetVLAD(num_clusters=2, dim=2, alpha=1.0).double()
    with torch.no_grad():
        layer.conv.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]).reshape(2, 2, 1, 1))
        layer.centroids.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    x = torch.tensor([3.0, 4.0], dtype=torch.float64).reshape(1, 2, 1, 1)  # normalised: (.6, .8)
    a0 = 1.0 / (1.0 + np.exp(0.8 - 0.6))
    expected = np.array([[a0 * (0.6 - 1.0), a0 * 0.8], [(1 - a0) * 0.6, (1 - a0) * (0.8 - 1.0)]])
    np.testing.assert_allclose(layer(x)[0].detach().numpy(), expected, rtol=1e-12)


def test_init_rejects_bad_inputs() -> None:
    layer = NetVLAD(num_clusters=4, dim=3)
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"clsts has shape \(4, 5\).*\(4, 3\)"):
        layer.init_from_clusters(rng.normal(size=(4, 5)), rng.normal(size=(10, 3)))
    with pytest.raises(ValueError, match="traindescs"):
        layer.init_from_clusters(rng.normal(size=(4, 3)), rng.normal(size=(10, 2)))
    with pytest.raises(ValueError, match="NaN"):
        layer.init_from_clusters(np.full((4, 3), np.nan), rng.normal(size=(10, 3)))
    same = np.ones((4, 3))
    with pytest.raises(ValueError, match="gap"):
        layer.init_from_clusters(same, rng.normal(size=(10, 3)))


def test_forward_rejects_wrong_channels() -> None:
    with pytest.raises(ValueError, match=r"\[B, 8, H, W\]"):
        NetVLAD(num_clusters=2, dim=8)(torch.zeros(1, 4, 2, 2))
