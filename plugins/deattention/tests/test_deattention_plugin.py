"""What the de-attention plugin registers: model, loss, trainer, methods, profiles, rows."""

from __future__ import annotations

import subprocess
import sys

import pytest

from vpr_bench import resolve, resolve_experiment
from vpr_bench.errors import ConfigError
from vpr_bench.testing import isolated_manager
from vpr_bench_deattention.config import DeAttentionConfig
from vpr_bench_deattention.loss import STMLLoss
from vpr_bench_deattention.model import build_deattention_netvlad
from vpr_bench_deattention.trainer import DeAttentionMiningConfig

PLUGINS = ("vpr_bench_netvlad.plugin", "vpr_bench_deattention.plugin")


def test_parts_are_registered() -> None:
    registries = isolated_manager(PLUGINS).registries()
    spec = registries.models.get("deattention-netvlad")
    assert resolve(spec.build) is build_deattention_netvlad
    assert resolve(spec.config_cls) is DeAttentionConfig
    assert spec.preprocess.mean == (0.485, 0.456, 0.406) and not spec.preprocess.scale_255
    assert spec.preprocess.train_size == (480, 640)
    assert resolve(registries.losses.get("stml").build) is STMLLoss
    trainer = registries.trainers.get("deattention-mining")
    assert resolve(trainer.config_cls) is DeAttentionMiningConfig


def test_methods_name_their_parts() -> None:
    methods = isolated_manager(PLUGINS).registries().methods
    parts = {
        name: (methods.get(name).model, methods.get(name).loss, methods.get(name).trainer)
        for name in ("deattention", "deattention-only", "netvlad-stml")
    }
    assert parts == {
        "deattention": ("deattention-netvlad", "stml", "deattention-mining"),
        "deattention-only": ("deattention-netvlad", "triplet", "deattention-mining"),
        "netvlad-stml": ("deattention-netvlad", "stml", "deattention-mining"),
    }


def _config(method: str, profile: str = "paper"):  # type: ignore[no-untyped-def]
    registries = isolated_manager(PLUGINS).registries()
    return resolve_experiment(registries.methods.get(method), registries, profile=profile)


def test_the_paper_profiles_are_the_scripts() -> None:
    final = _config("deattention")
    m, loss, t = final.model, final.loss, final.trainer
    assert (m.backbone, m.num_clusters, m.train_layers, m.variant) == (
        "vgg16",
        64,
        "conv3",
        "openibl",
    )
    assert (m.deattention, m.se, m.deatt_categories) == (True, True, ("human", "vehicle", "sky"))
    assert (loss.margin, loss.pn_margin) == (0.1, 1.4)
    assert (t.lr, t.momentum, t.weight_decay, t.scheduler) == (1e-3, 0.9, 1e-3, "none")
    assert (t.epochs, t.tuples_per_step, t.neg_num, t.neg_pool, t.cache_queries) == (
        30,
        4,
        10,
        1000,
        1000,
    )
    assert (t.select_metric, t.early_stop_patience, final.seed) == ("R@1", 11, 123)
    assert (t.mining_margin, t.mask_weight, t.deatt_centroids) == (1.5, 0.1, True)
    assert t.color_jitter == (0.0, 0.0, 0.0, 0.0) and final.val_dataset == "pitts30k-val"
    only = _config("deattention-only")
    assert (only.model.se, only.model.deatt_categories) == (False, ("human", "vehicle"))
    assert (only.loss.margin, only.trainer.mining_margin) == (0.1, 0.1)
    stml = _config("netvlad-stml")
    assert (stml.model.deattention, stml.model.se, stml.trainer.deatt_centroids) == (
        False,
        False,
        False,
    )
    assert (stml.loss.margin, stml.loss.pn_margin, stml.trainer.mining_margin) == (0.1, 1.4, 1.5)


def test_the_quick_profiles_fit_a_cpu() -> None:
    for method in ("deattention", "deattention-only", "netvlad-stml"):
        config = _config(method, "quick")
        assert config.model.backbone == "tiny" and config.model.num_clusters == 16
        assert (config.trainer.height, config.trainer.width) == (120, 160)
        assert config.train_dataset == "synthcity-train"
        assert config.trainer.select_metric == "R@1" and config.trainer.scheduler == "none"
    assert _config("deattention", "quick").trainer.teacher == "synthcity"


def test_paper_rows() -> None:
    methods = isolated_manager(PLUGINS).registries().methods
    rows = {
        name: {r.dataset: dict(r.metrics) for r in methods.get(name).paper}
        for name in ("deattention", "deattention-only")
    }
    assert rows == {
        "deattention": {"pitts30k-val": {"R@1": 90.3, "R@5": 96.7}},
        "deattention-only": {"pitts30k-val": {"R@1": 89.3, "R@5": 96.6}},
    }
    assert methods.get("netvlad-stml").paper == ()


def test_bad_trainer_option() -> None:
    with pytest.raises(ConfigError, match="mining_descriptor = 'cached'.*plain, full"):
        DeAttentionMiningConfig(mining_descriptor="cached")


def test_plugin_import_does_not_import_torch() -> None:
    code = (
        "import sys, vpr_bench_deattention, vpr_bench_deattention.plugin; "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
