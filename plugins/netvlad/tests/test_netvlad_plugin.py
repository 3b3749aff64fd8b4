"""What the NetVLAD plugin registers: model, method, profiles, paper rows, preprocessing."""

from __future__ import annotations

import math
import subprocess
import sys

from vpr_bench import MATCONVNET, ResizePolicy
from vpr_bench.builtin.triplet import TripletConfig
from vpr_bench.config import apply_overrides
from vpr_bench.registry import resolve
from vpr_bench.testing import isolated_manager
from vpr_bench_netvlad.config import NetVLADConfig, NetVLADMethodConfig
from vpr_bench_netvlad.model import build_netvlad


def test_model_and_method_specs() -> None:
    reg = isolated_manager(("vpr_bench_netvlad.plugin",)).registries()
    model = reg.models.get("netvlad")
    assert resolve(model.build) is build_netvlad and resolve(model.config_cls) is NetVLADConfig
    pre = model.preprocess
    assert (pre.mean, pre.std, pre.scale_255) == (MATCONVNET.mean, MATCONVNET.std, True)
    assert pre.train_size == (480, 640) and pre.test_policy == ResizePolicy.hard(480, 640)
    method = reg.methods.get("netvlad")
    assert (method.model, method.loss, method.trainer) == ("netvlad", "triplet", "triplet-mining")
    assert method.train_dataset == "pitts30k-train"
    assert resolve(method.config_cls) is NetVLADMethodConfig
    rows = {r.dataset: r.metrics for r in method.paper}
    assert rows["pitts30k-val"] == {"R@1": 85.2, "R@5": 94.8, "R@10": 97.0}
    assert all(r.source for r in method.paper)
    assert method.checkpoints == ()  # OpenIBL releases no triplet-NetVLAD weights


def test_paper_profile_is_the_openibl_recipe() -> None:
    reg = isolated_manager(("vpr_bench_netvlad.plugin",)).registries()
    profile = reg.methods.get("netvlad").profiles["paper"]
    cfg = apply_overrides(NetVLADMethodConfig(), profile, source="paper")
    assert (cfg.backbone, cfg.num_clusters, cfg.image_size, cfg.epochs) == (
        "vgg16",
        64,
        (480, 640),
        5,
    )
    assert (cfg.cache_queries, cfg.neg_num, cfg.neg_pool) == (1000, 10, 1000)
    assert (cfg.lr, cfg.momentum, cfg.weight_decay, cfg.pca_dim) == (1e-3, 0.9, 1e-3, 4096)
    assert cfg.margin == math.sqrt(0.1)
    loss_cfg = cfg.loss_config()
    assert isinstance(loss_cfg, TripletConfig) and loss_cfg.margin == math.sqrt(0.1)
    assert cfg.model_config().train_layers == "conv5"


def test_quick_profile_builds_a_small_model() -> None:
    reg = isolated_manager(("vpr_bench_netvlad.plugin",)).registries()
    cfg = apply_overrides(
        NetVLADMethodConfig(), reg.methods.get("netvlad").profiles["quick"], source="quick"
    )
    assert cfg.image_size is None and cfg.pca_dim is None and cfg.num_clusters == 16
    model = build_netvlad(cfg.model_config())
    assert model.descriptor_dim == 16 * 4 * cfg.tiny_width
    assert sum(p.numel() for p in model.parameters()) < 100_000


def test_plugin_import_does_not_import_torch() -> None:
    code = "import sys, vpr_bench_netvlad.plugin; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
