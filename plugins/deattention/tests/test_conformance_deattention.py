"""The harness's conformance kit on the deattention-netvlad model and the stml loss."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from vpr_bench.testing import LossConformance, ModelConformance

PLUGINS = ("vpr_bench_netvlad.plugin", "vpr_bench_deattention.plugin")
TINY: Mapping[str, Any] = {"backbone": "tiny", "num_clusters": 8, "pretrained": None}


class TestDeAttentionSE(ModelConformance):
    plugins = PLUGINS
    model_name = "deattention-netvlad"
    model_overrides: ClassVar[Mapping[str, Any]] = TINY


class TestDeAttentionOnly(ModelConformance):
    plugins = PLUGINS
    model_name = "deattention-netvlad"
    model_overrides: ClassVar[Mapping[str, Any]] = {**TINY, "se": False}


class TestSTML(LossConformance):
    plugins = PLUGINS
    loss_name = "stml"
