"""The VainF DeepLabV3+ / MobileNetV2 teacher on checkpoints synthesised in VainF's format."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vpr_bench.errors import ConfigError, DataError
from vpr_bench_deattention.deeplab import build_deeplabv3plus_mobilenet
from vpr_bench_deattention.teachers import VainFTeacher, build_teacher

CATS = ("human", "vehicle", "sky")


def test_architecture_follows_vainf_layout() -> None:
    net = build_deeplabv3plus_mobilenet()
    keys = set(net.state_dict())
    # features[:4] -> low_level_features 0..3; features[4:-1] keep indices 4..17.
    assert "backbone.low_level_features.3.conv.3.running_var" in keys
    assert "backbone.high_level_features.4.conv.0.0.weight" in keys
    assert "backbone.high_level_features.17.conv.3.weight" in keys
    assert not any(k.startswith("backbone.high_level_features.18") for k in keys)
    assert "backbone.low_level_features.1.conv.2.weight" in keys  # t = 1: no expansion conv
    assert "classifier.aspp.convs.4.1.weight" in keys  # image pooling branch
    assert net.state_dict()["classifier.classifier.3.weight"].shape == (19, 256, 1, 1)
    assert net.state_dict()["classifier.project.0.weight"].shape == (48, 24, 1, 1)
    low, high = net.backbone(torch.zeros(1, 3, 480, 640))
    assert low.shape == (1, 24, 120, 160) and high.shape == (1, 320, 30, 40)  # output stride 16


def _checkpoint(tmp_path: Path, winner: int, prefix: str = "") -> Path:
    """A VainF-format file whose network predicts class ``winner`` everywhere."""
    net = build_deeplabv3plus_mobilenet()
    state = net.state_dict()
    state["classifier.classifier.3.weight"] = torch.zeros_like(
        state["classifier.classifier.3.weight"]
    )
    bias = torch.full((19,), -5.0)
    bias[winner] = 5.0
    state["classifier.classifier.3.bias"] = bias
    path = tmp_path / f"vainf-{winner}.pth"
    torch.save(
        {
            "cur_itrs": 30000,
            "model_state": {f"{prefix}{k}": v for k, v in state.items()},
            "optimizer_state": {"state": {}, "param_groups": []},
            "best_score": 0.72,
        },
        path,
    )
    return path


@pytest.mark.parametrize(("winner", "kept"), [(10, 0.0), (2, 1.0), (13, 0.0)])
def test_argmax_through_the_keep_table(tmp_path: Path, winner: int, kept: float) -> None:
    teacher = build_teacher("vainf-deeplabv3plus", CATS, weights=str(_checkpoint(tmp_path, winner)))
    assert isinstance(teacher, VainFTeacher)
    keep = teacher.keep(tmp_path / "x.jpg", torch.randn(3, 64, 80))
    assert keep.shape == (64, 80)
    assert torch.equal(keep, torch.full((64, 80), kept))


def test_module_prefix_and_identity(tmp_path: Path) -> None:
    a = VainFTeacher(_checkpoint(tmp_path, 10, prefix="module."), CATS)
    b = VainFTeacher(_checkpoint(tmp_path, 2), CATS)
    assert a.identity != b.identity != VainFTeacher(_checkpoint(tmp_path, 2), ("sky",)).identity


def test_a_non_vainf_file_lists_its_keys(tmp_path: Path) -> None:
    path = tmp_path / "other.pth"
    torch.save({"state_dict": {}, "epoch": 3}, path)
    with pytest.raises(DataError, match="expected a dict with 'model_state', found keys epoch, "
                       "state_dict") as info:  # fmt: skip
        VainFTeacher(path, CATS)
    assert "\n" not in str(info.value)
    torch.save({"model_state": {"backbone.conv1.weight": torch.zeros(1)}}, path)
    with pytest.raises(DataError, match="do not fit model VainF"):
        VainFTeacher(path, CATS)


def test_weights_are_required() -> None:
    with pytest.raises(ConfigError, match="teacher_weights.*drive.google.com"):
        build_teacher("vainf-deeplabv3plus", CATS)
