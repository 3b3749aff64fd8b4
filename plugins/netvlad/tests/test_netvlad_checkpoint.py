"""Loading OpenIBL checkpoints synthesised from the reference's state_dict manifest."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from vpr_bench.errors import DataError
from vpr_bench_netvlad.checkpoint import load_openibl_checkpoint, load_openibl_weights
from vpr_bench_netvlad.config import NetVLADConfig
from vpr_bench_netvlad.model import NetVLADModel, build_netvlad

PCA_DIM = 8  # the release has 4096 rows (512 MiB); the loader only needs [P, K*D] for any P
CONVS = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
POOL_AFTER = (2, 7, 14, 21)  # VGG16 max-pools sit at modules 4, 9, 16, 23


def _manifest(oracles_dir: Path) -> dict:  # type: ignore[type-arg]
    return json.loads((oracles_dir / "manifest_openibl_vgg16_netvlad.json").read_text())


def _random_state(entries: list[dict], seed: int) -> dict[str, torch.Tensor]:  # type: ignore[type-arg]
    gen = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    for entry in entries:
        shape = tuple(entry["shape"])
        if entry["name"].endswith("pca_layer.weight"):
            shape = (PCA_DIM, *shape[1:])
        elif entry["name"].endswith("pca_layer.bias"):
            shape = (PCA_DIM,)
        fan_in = math.prod(shape[1:]) if len(shape) > 1 else 1
        scale = math.sqrt(2.0 / fan_in) if len(shape) > 1 else 0.01  # keeps activations finite
        state[entry["name"]] = torch.randn(shape, generator=gen) * scale
    return state


def _reference_descriptor(state: dict[str, torch.Tensor], image: torch.Tensor) -> torch.Tensor:
    """VGG16 conv5_3 (pre-ReLU) + NetVLAD + EmbedNet normalisation, straight from the tensors."""
    get = {k.removeprefix("module."): v.double() for k, v in state.items()}
    x = image.double()
    for i in CONVS:
        x = F.conv2d(
            x, get[f"base_model.base.{i}.weight"], get[f"base_model.base.{i}.bias"], padding=1
        )
        if i != 28:
            x = F.relu(x)
        if i in POOL_AFTER:
            x = F.max_pool2d(x, 2, 2)
    centroids = get["net_vlad.centroids"]
    weight = get["net_vlad.conv.weight"][:, :, 0, 0]
    x = F.normalize(x, dim=1).flatten(2)  # [B, D, N]
    assign = torch.softmax(torch.einsum("kd,bdn->bkn", weight, x), dim=1)
    residual = x[:, None, :, :] - centroids[None, :, :, None]  # [B, K, D, N] as OpenIBL does
    vlad = (residual * assign[:, :, None, :]).sum(-1)
    return F.normalize(F.normalize(vlad, dim=2).flatten(1), dim=1)


@pytest.fixture(scope="module")
def vgg_model() -> NetVLADModel:
    return build_netvlad(NetVLADConfig(backbone="vgg16", pretrained=None, seed=0))


@pytest.fixture(scope="module")
def training_ckpt(
    oracles_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, torch.Tensor]]:
    entries = _manifest(oracles_dir)["EmbedNet"]["entries_with_module_prefix"]
    state = _random_state(entries, seed=1)
    path = tmp_path_factory.mktemp("ckpt") / "model_best.pth.tar"
    torch.save({"state_dict": state, "epoch": 4, "best_recall5": 0.95}, path)
    return path, state


def test_manifest_keys_are_exactly_the_model_keys(
    oracles_dir: Path, vgg_model: NetVLADModel
) -> None:
    entries = _manifest(oracles_dir)["EmbedNet"]["entries"]
    ours = {k: tuple(v.shape) for k, v in vgg_model.state_dict().items()}
    theirs = {e["name"].replace("base_model.base.", "trunk."): tuple(e["shape"]) for e in entries}
    assert ours == theirs
    assert vgg_model.descriptor_dim == 32768


def test_training_checkpoint_loads_and_matches_reference(
    training_ckpt: tuple[Path, dict[str, torch.Tensor]], vgg_model: NetVLADModel
) -> None:
    path, state = training_ckpt
    loaded = load_openibl_checkpoint(path, vgg_model)
    assert loaded.pca_weight is None and loaded.pca_bias is None
    assert loaded.meta == {"epoch": 4, "best_recall5": 0.95, "format": "openibl-training"}
    image = torch.randn(1, 3, 64, 80, generator=torch.Generator().manual_seed(2))
    model = vgg_model.double().eval()
    try:
        with torch.no_grad():
            ours = model(image.double())
        torch.testing.assert_close(ours, _reference_descriptor(state, image), rtol=1e-9, atol=1e-11)
    finally:
        vgg_model.float()


def test_hub_release_yields_pca_stage(
    oracles_dir: Path, tmp_path: Path, vgg_model: NetVLADModel
) -> None:
    state = _random_state(_manifest(oracles_dir)["EmbedNetPCA"]["entries"], seed=3)
    path = tmp_path / "vgg16_netvlad.pth"
    torch.save(state, path)
    loaded = load_openibl_checkpoint(path, vgg_model)
    assert loaded.meta == {"format": "openibl-hub"}
    assert loaded.pca_weight is not None and loaded.pca_bias is not None
    torch.testing.assert_close(
        loaded.pca_weight, state["pca_layer.weight"][:, :, 0, 0], rtol=0, atol=0
    )
    torch.testing.assert_close(loaded.pca_bias, state["pca_layer.bias"], rtol=0, atol=0)
    torch.testing.assert_close(vgg_model.net_vlad.centroids.detach(), state["net_vlad.centroids"])


def test_hub_release_through_checkpoint_load_equals_embednetpca(
    oracles_dir: Path, tmp_path: Path, vgg_model: NetVLADModel
) -> None:
    # What `vpr-bench run --checkpoint` does with the hub file: load, then apply the returned
    # PCA; OpenIBL's EmbedNetPCA: VLAD -> L2 -> 1x1 conv (pca_layer) -> L2.
    state = _random_state(_manifest(oracles_dir)["EmbedNetPCA"]["entries"], seed=4)
    path = tmp_path / "vgg16_netvlad.pth"
    torch.save(state, path)
    pca = load_openibl_weights(path, vgg_model)
    assert pca is not None and (pca.input_dim, pca.n_components) == (32768, PCA_DIM)
    image = torch.randn(1, 3, 64, 80, generator=torch.Generator().manual_seed(5))
    model = vgg_model.double().eval()
    try:
        with torch.no_grad():
            ours = pca.apply(model(image.double()))
        vlad = _reference_descriptor(state, image)[:, :, None, None]
        weight, bias = state["pca_layer.weight"].double(), state["pca_layer.bias"].double()
        expected = F.normalize(F.conv2d(vlad, weight, bias).flatten(1), dim=1)
        torch.testing.assert_close(ours, expected, rtol=1e-9, atol=1e-11)
    finally:
        vgg_model.float()


def test_checkpoint_load_refuses_another_model(tmp_path: Path) -> None:
    from vpr_bench.models import TinyGeMConfig, build_tiny_gem

    with pytest.raises(DataError, match="loads into the netvlad model only, not a"):
        load_openibl_weights(tmp_path / "x.pth", build_tiny_gem(TinyGeMConfig()))


def test_mismatches_are_listed(
    training_ckpt: tuple[Path, dict[str, torch.Tensor]], tmp_path: Path, vgg_model: NetVLADModel
) -> None:
    _, state = training_ckpt
    broken = dict(state)
    del broken["module.base_model.base.26.bias"]
    broken["module.net_vlad.extra"] = torch.zeros(1)
    broken["module.net_vlad.centroids"] = torch.zeros(32, 512)
    path = tmp_path / "broken.pth.tar"
    torch.save({"state_dict": broken}, path)
    with pytest.raises(DataError) as info:
        load_openibl_checkpoint(path, vgg_model)
    message = str(info.value)
    assert str(path) in message
    assert "missing keys: trunk.26.bias" in message
    assert "unexpected keys: net_vlad.extra" in message
    assert "net_vlad.centroids: file (32, 512) vs model (64, 512)" in message


def test_unreadable_and_missing_files(tmp_path: Path, vgg_model: NetVLADModel) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_openibl_checkpoint(tmp_path / "nope.pth", vgg_model)
    bad = tmp_path / "garbage.pth"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(DataError, match=r"garbage.pth: not a torch file"):
        load_openibl_checkpoint(bad, vgg_model)
