"""The harness's conformance kit on the SFRS loss, with each of its hard-loss variants."""

from __future__ import annotations

from vpr_bench.testing import LossConformance

PLUGINS = ("vpr_bench_netvlad.plugin", "vpr_bench_sfrs.plugin")


class TestSfrs(LossConformance):
    plugins = PLUGINS
    loss_name = "sfrs"


class TestSfrsSareJoint(LossConformance):
    plugins = PLUGINS
    loss_name = "sfrs"
    loss_overrides = {"hard": "sare-joint"}


class TestSfrsTriplet(LossConformance):
    plugins = PLUGINS
    loss_name = "sfrs"
    loss_overrides = {"hard": "triplet"}
