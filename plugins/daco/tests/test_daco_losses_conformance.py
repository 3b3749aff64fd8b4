"""The five losses pass the harness's loss kit (domain-views batches of their own n_views)."""

from __future__ import annotations

from vpr_bench.testing import LossConformance

PLUGINS = ("vpr_bench_daco.plugin",)


class TestDaCo(LossConformance):
    plugins = PLUGINS
    loss_name = "daco"


class TestSimCLR(LossConformance):
    plugins = PLUGINS
    loss_name = "simclr"


class TestSimSiam(LossConformance):
    plugins = PLUGINS
    loss_name = "simsiam"


class TestMoCo(LossConformance):
    plugins = PLUGINS
    loss_name = "moco"
    loss_overrides = {"negs": 32, "dim": 16}


class TestNPID(LossConformance):
    plugins = PLUGINS
    loss_name = "npid"
    loss_overrides = {"negs": 32, "dim": 16, "bank_size": 40}
