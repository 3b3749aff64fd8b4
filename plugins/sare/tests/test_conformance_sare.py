"""The harness's conformance kit on the SARE losses."""

from __future__ import annotations

from vpr_bench.testing import LossConformance

PLUGINS = ("vpr_bench_netvlad.plugin", "vpr_bench_sare.plugin")


class TestSareInd(LossConformance):
    plugins = PLUGINS
    loss_name = "sare-ind"


class TestSareJoint(LossConformance):
    plugins = PLUGINS
    loss_name = "sare-joint"
