"""Trunks, freezing, pretrained-weight loading and the model's output contract."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from torch import nn

from vpr_bench.errors import ConfigError
from vpr_bench_netvlad.backbones import build_trunk
from vpr_bench_netvlad.config import NetVLADConfig
from vpr_bench_netvlad.model import build_netvlad

VGG_LAYERS = "CRCRMCRCRMCRCRCRMCRCRCRMCRCRC"  # modules 0..28: conv, relu, max-pool; ends at conv5_3


def test_vgg16_trunk_is_cut_at_conv5_3_pre_relu() -> None:
    trunk = build_trunk("vgg16", None)
    kinds = {nn.Conv2d: "C", nn.ReLU: "R", nn.MaxPool2d: "M"}
    assert "".join(kinds[type(m)] for m in trunk.module) == VGG_LAYERS
    assert trunk.dim == 512 and trunk.pretrained_from is None
    with torch.no_grad():
        out = trunk.module(torch.randn(1, 3, 64, 80))
    assert out.shape == (1, 512, 4, 5)  # stride 16
    assert (out < 0).any()  # conv5_3 output before its ReLU


def test_matconvnet_weights_file_loads_and_freezes_before_conv5(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source = build_trunk("vgg16", None, seed=5).module.state_dict()  # keys "0.weight" ... "28.bias"
    path = tmp_path / "vd16_offtheshelf_conv5_3_max.pth"
    torch.save(source, path)
    with caplog.at_level(logging.INFO):
        model = build_netvlad(NetVLADConfig(pretrained=str(path), num_clusters=4))
    assert "weights loaded from" in caplog.text
    torch.testing.assert_close(model.trunk[28].weight.detach(), source["28.weight"])
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {f"trunk.{i}.{k}" for i in (24, 26, 28) for k in ("weight", "bias")} | {
        "net_vlad.centroids",
        "net_vlad.conv.weight",
    }
    conv4 = build_netvlad(NetVLADConfig(pretrained=str(path), num_clusters=4, train_layers="conv4"))
    assert conv4.trunk[17].weight.requires_grad and not conv4.trunk[14].weight.requires_grad


def test_random_init_is_logged_once_and_nothing_is_frozen(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vpr_bench_netvlad import backbones

    monkeypatch.setattr(backbones, "_ANNOUNCED", set())
    with caplog.at_level(logging.INFO):
        model = build_netvlad(NetVLADConfig(backbone="tiny", num_clusters=8, pretrained=None))
        build_netvlad(NetVLADConfig(backbone="tiny", num_clusters=8, pretrained=None))
    # Asked for (pretrained=None): INFO, once per process however often the model is built.
    asked = [r for r in caplog.records if "random init (pretrained=None)" in r.getMessage()]
    assert [r.levelno for r in asked] == [logging.INFO]
    assert all(p.requires_grad for p in model.parameters())
    assert model.descriptor_dim == 8 * 64
    caplog.clear()
    with caplog.at_level(logging.INFO):
        build_netvlad(NetVLADConfig(backbone="tiny", num_clusters=8, pretrained="auto"))
    wanted = [r for r in caplog.records if "RANDOM init" in r.getMessage()]
    assert [r.levelno for r in wanted] == [logging.WARNING]  # weights wanted, none found


def test_missing_or_unfitting_weights_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        build_trunk("vgg16", str(tmp_path / "nope.pth"))
    path = tmp_path / "other.pth"
    torch.save({"0.weight": torch.zeros(1)}, path)
    with pytest.raises(ConfigError, match="do not contain the trunk's tensors"):
        build_trunk("vgg16", str(path))


@pytest.mark.parametrize(("backbone", "dim"), [("resnet18-conv4", 256), ("resnet18-conv5", 512)])
def test_resnet_trunks(backbone: str, dim: int) -> None:
    model = build_netvlad(NetVLADConfig(backbone=backbone, num_clusters=4, pretrained=None)).eval()
    assert model.local_dim == dim and model.descriptor_dim == 4 * dim
    with torch.no_grad():
        out = model(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, 4 * dim) and out.dtype == torch.float32
    torch.testing.assert_close(out.norm(dim=1), torch.ones(2))


def test_frozen_batchnorm_stays_in_eval_mode(tmp_path: Path) -> None:
    source = build_trunk("resnet18-conv4", None).module.state_dict()
    path = tmp_path / "r18.pth"
    torch.save(source, path)
    model = build_netvlad(
        NetVLADConfig(
            backbone="resnet18-conv4", num_clusters=4, pretrained=str(path), train_layers="conv4"
        )
    ).train()
    assert not model.trunk.bn1.training and not model.trunk.layer2[0].bn1.training
    assert model.trunk.layer3[0].bn1.training
    assert (
        not model.trunk.conv1.weight.requires_grad
        and model.trunk.layer3[0].conv1.weight.requires_grad
    )
    with pytest.raises(ConfigError, match="not part of backbone 'resnet18-conv4'"):
        build_netvlad(NetVLADConfig(backbone="resnet18-conv4", pretrained=str(path)))


def test_config_errors() -> None:
    with pytest.raises(ConfigError, match="backbone = 'vgg19'.*vgg16"):
        NetVLADConfig(backbone="vgg19")
    with pytest.raises(ConfigError, match=r"model\.num_clusters = 0 is out of range.*>= 1"):
        NetVLADConfig(num_clusters=0)
    with pytest.raises(ConfigError, match="train_layers = 'conv6'"):
        NetVLADConfig(train_layers="conv6")
    with pytest.raises(ConfigError, match="tiny_stem_norm = 'group'.*batch, instance"):
        NetVLADConfig(tiny_stem_norm="group")
    for name in ("init_images", "init_per_image", "init_iters"):
        with pytest.raises(ConfigError, match=rf"model\.{name} = 0 is out of range.*>= 1"):
            NetVLADConfig(**{name: 0})


def test_forward_rejects_non_rgb() -> None:
    model = build_netvlad(
        NetVLADConfig(backbone="tiny", num_clusters=2, tiny_width=2, pretrained=None)
    )
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
        model(torch.zeros(1, 1, 8, 8))


def test_instance_stem_divides_out_image_brightness() -> None:
    """The quick profile's tiny trunk: InstanceNorm after conv 1, BatchNorm after the others.

    Its conv weights are the BatchNorm trunk's of the same seed, and after the stem a dimmed
    image (every pixel times 0.3, as dusk or night does) gives the features of the bright one,
    where the BatchNorm stem passes on 0.3 of them.
    """
    batch = build_trunk("tiny", None, 4, seed=3).module
    inst = build_trunk("tiny", None, 4, seed=3, tiny_stem_norm="instance").module
    assert isinstance(inst[1], nn.InstanceNorm2d) and inst[1].affine
    assert [type(m) for m in inst[4:]] == [type(m) for m in batch[4:]]
    for key, value in batch.state_dict().items():
        if key.startswith("0.") or not key.startswith("1."):
            assert torch.equal(value, inst.state_dict()[key]), key
    image = torch.rand(2, 3, 24, 32) * 255.0
    inst.eval()
    batch.eval()
    with torch.no_grad():
        bright, dim = inst[:3](image), inst[:3](0.3 * image)
        torch.testing.assert_close(dim, bright, atol=1e-3, rtol=1e-3)
        ratio = batch[:3](0.3 * image).sum() / batch[:3](image).sum()
    assert abs(float(ratio) - 0.3) < 1e-3
