"""The harness's conformance kit on the netvlad model (tiny trunk, VGG16 and ResNet18)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from vpr_bench.testing import LossConformance, ModelConformance


class TestNetVLADTiny(ModelConformance):
    plugins = ("vpr_bench_netvlad.plugin",)
    model_name = "netvlad"
    model_overrides: ClassVar[Mapping[str, Any]] = {
        "backbone": "tiny",
        "num_clusters": 8,
        "pretrained": None,
    }


class TestNetVLADResNet18(ModelConformance):
    plugins = ("vpr_bench_netvlad.plugin",)
    model_name = "netvlad"
    model_overrides: ClassVar[Mapping[str, Any]] = {
        "backbone": "resnet18-conv4",
        "num_clusters": 4,
        "pretrained": None,
    }


class TestTripletWithNetVLAD(LossConformance):
    plugins = ("vpr_bench_netvlad.plugin",)
    loss_name = "triplet"
