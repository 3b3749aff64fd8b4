"""The harness's conformance kit on the clusvpr model (region descriptors included)."""

from __future__ import annotations

from vpr_bench.testing import ModelConformance
from vpr_bench_clusvpr.plugin import QUICK_PROFILE

PLUGINS = ("vpr_bench_netvlad.plugin", "vpr_bench_sfrs.plugin", "vpr_bench_clusvpr.plugin")
QUICK_MODEL = {k.removeprefix("model."): v for k, v in QUICK_PROFILE.items() if k[:6] == "model."}


class TestClusVPR(ModelConformance):
    """What ``vpr-bench check clusvpr`` runs: the quick model at the kit's 48x64 (6x8 map, so
    the evaluation takes the resize path to the 12x16 reference map)."""

    plugins = PLUGINS
    model_name = "clusvpr"
    model_overrides = QUICK_MODEL


class TestClusVPRAtItsTrainingSize(ModelConformance):
    """The quick model at its training size 96x128 (the reference 12x16 map, no resize)."""

    plugins = PLUGINS
    model_name = "clusvpr"
    model_overrides = QUICK_MODEL
    input_size = (96, 128)


class TestClusVPRPaperShape(ModelConformance):
    """The paper's VLAD sizes (K 64, groups of 128 channels, the 30x40 reference map) on the
    tiny trunk with 128 channels, at 240x320 (a 30x40 map)."""

    plugins = PLUGINS
    model_name = "clusvpr"
    model_overrides = {"backbone": "tiny", "tiny_width": 32, "pretrained": None, "groups": 2}
    input_size = (240, 320)
