"""The ``daco`` model: the kit's contracts, DaCo's layout (manifest_daco.json), normalisers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from vpr_bench.errors import ConfigError
from vpr_bench.testing import ModelConformance
from vpr_bench_daco.config import NORMALIZERS, DaCoConfig
from vpr_bench_daco.model import build_daco

PLUGINS = ("vpr_bench_daco.plugin",)


class TestDaCoTiny(ModelConformance):
    plugins = PLUGINS
    model_name = "daco"
    model_overrides = {"backbone": "tiny", "hidden_dim": 16, "proj_dim": 16}


class TestDaCoResNet18(ModelConformance):
    plugins = PLUGINS
    model_name = "daco"
    model_overrides = {"backbone": "resnet18", "hidden_dim": 16, "proj_dim": 16}
    input_size = (32, 32)


def test_resnet50_state_dict_is_dacos_layout(oracles_dir: Path) -> None:
    """Names, shapes and order of DaCo's Model(512): f.* (resnet50 minus fc) and g.*."""
    manifest = json.loads((oracles_dir / "manifest_daco.json").read_text())
    state = build_daco(DaCoConfig(normalizer="tokyo")).state_dict()
    expected = [(e["name"], tuple(e["shape"])) for e in manifest["entries"]]
    assert [(k, tuple(v.shape)) for k, v in state.items()] == expected
    assert sum(v.numel() for v in state.values()) == manifest["n_values"]


def test_projection_output_and_random_init() -> None:
    torch.manual_seed(0)
    model = build_daco(DaCoConfig(backbone="tiny", hidden_dim=8, proj_dim=6)).train()
    out = model(torch.rand(3, 3, 32, 32), projection=True)
    assert out.shape == (3, 64 + 6)
    torch.testing.assert_close(out[:, :64].norm(dim=1), torch.ones(3))
    torch.testing.assert_close(out[:, 64:].norm(dim=1), torch.ones(3))
    torch.manual_seed(1)
    other = build_daco(DaCoConfig(backbone="tiny", hidden_dim=8, proj_dim=6))
    assert not torch.equal(model.f[0].weight, other.f[0].weight)  # no fixed pretrained start


def test_the_model_normalises_its_input_per_dataset() -> None:
    torch.manual_seed(0)
    tokyo = build_daco(DaCoConfig(backbone="tiny", normalizer="tokyo")).eval()
    synthia = build_daco(DaCoConfig(backbone="tiny", normalizer="synthia")).eval()
    synthia.load_state_dict(tokyo.state_dict())
    images = torch.rand(2, 3, 32, 32)
    mean, std = NORMALIZERS["tokyo"]
    with torch.no_grad():
        expected = torch.nn.functional.normalize(
            tokyo.f(
                (images - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]
            ).flatten(1),
            dim=1,
        )
        torch.testing.assert_close(tokyo(images), expected)
        assert not torch.allclose(tokyo(images), synthia(images))
    assert "mean" not in tokyo.state_dict()  # the normaliser is not part of the weights


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("normalizer", "kitti", "model.normalizer 'kitti' is unknown: use one of tokyo"),
        ("backbone", "vgg16", "model.backbone 'vgg16' is unknown"),
        ("proj_dim", 0, "model.hidden_dim and model.proj_dim must be >= 1"),
        ("tiny_stem_norm", "layer", "model.tiny_stem_norm = 'layer' is not valid.*batch, instance"),
    ],
)
def test_bad_model_options_fail_in_one_line(field: str, value: object, says: str) -> None:
    config = DaCoConfig(backbone="tiny")
    setattr(config, field, value)
    with pytest.raises(ConfigError, match=says) as caught:
        build_daco(config)
    assert "\n" not in str(caught.value)


def test_quick_trunk_has_an_instance_norm_stem() -> None:
    from vpr_bench_daco.plugin import profiles

    for method in ("daco", "simclr", "simsiam", "moco", "npid"):
        assert profiles(method)["quick"]["model.tiny_stem_norm"] == "instance"
    model = build_daco(DaCoConfig(backbone="tiny", tiny_width=4, tiny_stem_norm="instance"))
    norms = [type(m).__name__ for m in model.f.modules() if "Norm" in type(m).__name__]
    assert norms == ["InstanceNorm2d", "BatchNorm2d", "BatchNorm2d", "BatchNorm2d"]
