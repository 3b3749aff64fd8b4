"""The harness's conformance kit on DISAM's loss (coarse, fine and default flags)."""

from __future__ import annotations

from vpr_bench.testing import LossConformance

PLUGINS = ("vpr_bench_disam.plugin",)


class TestDisamLoss(LossConformance):
    plugins = PLUGINS
    loss_name = "disam"


class TestDisamLossCoarse(LossConformance):
    plugins = PLUGINS
    loss_name = "disam"
    loss_overrides = {"lambda_sam": 0.0}


class TestDisamLossFine(LossConformance):
    plugins = PLUGINS
    loss_name = "disam"
    loss_overrides = {"train_using_cos": True, "mean_cos": True, "cos_latent_with_l2": True}
