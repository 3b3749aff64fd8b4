"""What the ClusVPR plugin registers: the model, the method, its profiles and paper rows."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata

import pytest

from vpr_bench import resolve, resolve_experiment
from vpr_bench.testing import isolated_manager
from vpr_bench_clusvpr.config import ClusVPRConfig
from vpr_bench_clusvpr.model import build_clusvpr
from vpr_bench_clusvpr.prepare import prepare_clusvpr

PLUGINS = ("vpr_bench_netvlad.plugin", "vpr_bench_sfrs.plugin", "vpr_bench_clusvpr.plugin")


def test_the_model_is_registered() -> None:
    spec = isolated_manager(PLUGINS).registries().models.get("clusvpr")
    assert resolve(spec.build) is build_clusvpr and resolve(spec.config_cls) is ClusVPRConfig
    assert resolve(spec.prepare) is prepare_clusvpr
    assert spec.regions == 21
    # OpenIBL's input convention (ClusVPR's transforms are OpenIBL's): 0..255 minus the mean.
    assert spec.preprocess.scale_255 and spec.preprocess.train_size == (480, 640)


def test_the_method_names_its_parts() -> None:
    method = isolated_manager(PLUGINS).registries().methods.get("clusvpr")
    assert (method.model, method.loss, method.trainer) == ("clusvpr", "sfrs", "region-generations")
    assert method.train_dataset == "pitts30k-train"
    assert method.checkpoints == () and method.weights_loader is None  # nothing was released
    assert set(method.profiles) == {"paper", "quick"}


def test_the_paper_profile_is_the_training_script() -> None:
    registries = isolated_manager(PLUGINS).registries()
    method = registries.methods.get("clusvpr")
    config = resolve_experiment(method, registries, profile="paper")
    model, loss, trainer = config.model, config.loss, config.trainer
    # scripts/train_clusvpr.sh:24-29
    assert (model.backbone, model.num_clusters, model.groups, model.expansion) == (
        "vgg16",
        64,
        8,
        2,
    )
    assert model.train_layers == "conv5"  # train_clusvpr.py:100 never passes --layers full
    assert model.pretrained == "auto"  # torchvision's ImageNet VGG16 (methods.md C-8)
    assert (trainer.height, trainer.width, trainer.tuples_per_step) == (480, 640, 4)
    assert (trainer.neg_num, trainer.neg_pool, trainer.pos_num, trainer.pos_pool) == (
        1,
        1000,
        1,
        20,
    )
    assert (trainer.lr, trainer.momentum, trainer.weight_decay) == (1e-4, 0.9, 1e-3)
    assert (trainer.scheduler, trainer.step_size, trainer.gamma) == ("step", 5, 0.5)
    assert (trainer.generations, trainer.epochs, trainer.reinit_student) == (4, 5, False)
    assert trainer.cache_queries == 1000 and trainer.sync_bn
    assert trainer.color_jitter == (0.7, 0.7, 0.7, 0.5)
    assert (loss.hard, loss.temperatures, loss.soft_weight) == (
        "sare-ind",
        (0.06, 0.06, 0.05, 0.04),
        0.5,
    )
    assert (config.seed, config.pca_dim, trainer.select_metric) == (43, 4096, "R@5")


def test_the_quick_profile_fits_a_cpu() -> None:
    registries = isolated_manager(PLUGINS).registries()
    config = resolve_experiment(registries.methods.get("clusvpr"), registries, profile="quick")
    assert config.model.backbone == "tiny" and config.trainer.generations >= 2
    assert config.train_dataset == "synthcity-train"
    # 96x128 -> a 12x16 map: the reference size, even, 4x4 s-patches
    assert (config.trainer.height, config.trainer.width) == (96, 128)
    assert (config.model.map_height, config.model.map_width) == (12, 16)


def test_paper_rows() -> None:
    registries = isolated_manager(PLUGINS).registries()
    method = registries.methods.get("clusvpr")
    rows = {r.dataset: dict(r.metrics) for r in method.paper}
    assert rows == {
        "pitts30k-test": {"R@1": 90.8, "R@5": 95.2},
        "pitts250k-test": {"R@1": 92.4, "R@5": 96.9},
        "tokyo247": {"R@1": 87.5, "R@5": 91.5},
        "tokyotm-val": {"R@1": 96.8, "R@5": 98.7},
        "msls-val": {"R@1": 82.7, "R@5": 88.5},
    }
    assert all("Table I" in r.source for r in method.paper)
    tokyo = next(r for r in method.paper if r.dataset == "tokyo247")
    assert "top 300" in tokyo.variant
    for row in method.paper:  # every row names a protocol the harness knows
        registries.dataset_split(row.dataset)


def test_plugin_import_does_not_import_torch() -> None:
    code = "import sys, vpr_bench_clusvpr, vpr_bench_clusvpr.plugin; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _installed() -> bool:
    try:
        metadata.distribution("vpr-bench-clusvpr")
    except metadata.PackageNotFoundError:
        return False
    return True


@pytest.mark.skipif(not _installed(), reason="needs vpr-bench-clusvpr installed (make install)")
def test_plugins_clusvpr_alone_brings_what_it_depends_on(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from vpr_bench import get_registries
    from vpr_bench.cli import main

    registries = get_registries("clusvpr")
    assert "sfrs" in registries.losses and "clusvpr" in registries.methods
    assert "netvlad" not in registries.methods and "sfrs" not in registries.methods
    assert main(["--plugins", "clusvpr", "plugins"]) == 0
    assert "loaded as a dependency of clusvpr" in capsys.readouterr().out
