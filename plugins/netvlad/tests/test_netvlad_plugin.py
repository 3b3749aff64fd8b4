"""What the NetVLAD plugin registers: model, method, profiles, paper rows, preprocessing."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from vpr_bench import (
    MATCONVNET,
    ExperimentConfig,
    Registries,
    ResizePolicy,
    resolve,
    resolve_experiment,
)
from vpr_bench.errors import ConfigError
from vpr_bench.testing import isolated_manager
from vpr_bench.train import TripletConfig, TripletMiningConfig
from vpr_bench_netvlad.checkpoint import load_openibl_weights
from vpr_bench_netvlad.config import NetVLADConfig
from vpr_bench_netvlad.model import build_netvlad
from vpr_bench_netvlad.prepare import prepare_netvlad


@pytest.fixture(scope="module")
def registries() -> Registries:
    return isolated_manager(("vpr_bench_netvlad.plugin",)).registries()


def _resolve(registries: Registries, profile: str) -> ExperimentConfig:
    return resolve_experiment(registries.methods.get("netvlad"), registries, profile=profile)


def test_model_and_method_specs(registries: Registries) -> None:
    model = registries.models.get("netvlad")
    assert resolve(model.build) is build_netvlad and resolve(model.config_cls) is NetVLADConfig
    assert model.prepare is not None and resolve(model.prepare) is prepare_netvlad
    pre = model.preprocess
    assert (pre.mean, pre.std, pre.scale_255) == (MATCONVNET.mean, MATCONVNET.std, True)
    assert pre.train_size == (480, 640) and pre.test_policy == ResizePolicy.hard(480, 640)
    assert model.regions == 9  # SFRS's region descriptors, forward(images, regions=True)
    method = registries.methods.get("netvlad")
    assert (method.model, method.loss, method.trainer) == ("netvlad", "triplet", "triplet-mining")
    assert method.train_dataset == "pitts30k-train"
    assert resolve(method.weights_loader) is load_openibl_weights  # --weights OpenIBL files
    rows = {r.dataset: r.metrics for r in method.paper}
    assert rows["pitts30k-val"] == {"R@1": 85.2, "R@5": 94.8, "R@10": 97.0}
    assert all(r.source for r in method.paper)
    assert method.checkpoints == ()  # OpenIBL releases no triplet-NetVLAD weights


def test_paper_profile_is_the_openibl_recipe(registries: Registries) -> None:
    cfg = _resolve(registries, "paper")
    assert (cfg.profile, cfg.seed, cfg.pca_dim, cfg.pca_samples) == ("paper", 43, 4096, 10000)
    assert (cfg.train_dataset, cfg.val_dataset) == ("pitts30k-train", "pitts30k-val")
    model, loss, trainer = cfg.model, cfg.loss, cfg.trainer
    assert isinstance(model, NetVLADConfig)
    assert (model.backbone, model.num_clusters, model.train_layers, model.pretrained) == (
        "vgg16",
        64,
        "conv5",
        "auto",
    )
    assert (model.init_images, model.init_per_image, model.init_iters) == (500, 100, 100)
    assert isinstance(loss, TripletConfig) and loss.margin == math.sqrt(0.1)
    assert isinstance(trainer, TripletMiningConfig)
    assert (trainer.height, trainer.width, trainer.epochs, trainer.tuples_per_step) == (
        480,
        640,
        5,
        4,
    )
    assert (trainer.optimizer, trainer.lr, trainer.momentum, trainer.weight_decay) == (
        "sgd",
        1e-3,
        0.9,
        1e-3,
    )
    assert (trainer.scheduler, trainer.step_size, trainer.gamma) == ("step", 5, 0.5)
    assert (trainer.cache_queries, trainer.neg_num, trainer.neg_pool) == (1000, 10, 1000)
    assert trainer.select_metric == "R@5" and not trainer.cache_images


def test_quick_profile_is_cpu_sized(registries: Registries) -> None:
    cfg = _resolve(registries, "quick")
    assert (cfg.train_dataset, cfg.val_dataset) == ("synthcity-train", "synthcity-val")
    assert cfg.pca_dim is None and cfg.seed == 43
    model, trainer = cfg.model, cfg.trainer
    assert (model.backbone, model.tiny_width, model.num_clusters) == ("tiny", 16, 16)
    assert (model.train_layers, model.pretrained) == ("full", None)
    assert (trainer.height, trainer.width) == (120, 160)  # the small synthetic city's native size
    assert (trainer.epochs, trainer.lr, trainer.weight_decay) == (2, 1e-3, 1e-4)
    assert (trainer.cache_queries, trainer.neg_num, trainer.neg_pool) == (1200, 5, 100)
    assert trainer.cache_images is True
    built = build_netvlad(model)
    assert built.descriptor_dim == 16 * 4 * model.tiny_width
    assert sum(p.numel() for p in built.parameters()) < 100_000


def test_dotted_overrides_reach_the_model_and_trainer(registries: Registries) -> None:
    method = registries.methods.get("netvlad")
    cfg = resolve_experiment(
        method,
        registries,
        profile="quick",
        sets=["model.num_clusters=32", "trainer.lr=0.05", "model.init_images=7"],
    )
    assert (cfg.model.num_clusters, cfg.model.init_images, cfg.trainer.lr) == (32, 7, 0.05)
    with pytest.raises(ConfigError, match=r"model\.init_images = 0 is out of range.*>= 1"):
        resolve_experiment(method, registries, sets=["model.init_images=0"])
    with pytest.raises(ConfigError, match="unknown config key"):
        resolve_experiment(method, registries, sets=["model.cluster_images=5"])


def test_plugin_import_does_not_import_torch() -> None:
    code = "import sys, vpr_bench_netvlad.plugin; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
