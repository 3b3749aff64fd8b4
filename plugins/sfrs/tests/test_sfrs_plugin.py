"""What the SFRS plugin registers: the loss, the method (no profiles), paper rows, checkpoints."""

from __future__ import annotations

import subprocess
import sys

from vpr_bench import BatchKind, resolve
from vpr_bench.testing import isolated_manager
from vpr_bench_netvlad.checkpoint import load_openibl_weights
from vpr_bench_sfrs.checkpoint import load_sfrs_weights
from vpr_bench_sfrs.loss import SFRSConfig, SFRSLoss
from vpr_bench_sfrs.plugin import OPENIBL_SFRS, OPENIBL_SFRS_HUB

PLUGINS = ("vpr_bench_netvlad.plugin", "vpr_bench_sfrs.plugin")


def test_the_loss_is_registered() -> None:
    spec = isolated_manager(PLUGINS).registries().losses.get("sfrs")
    assert spec.batch_kind is BatchKind.REGION_TUPLES
    assert resolve(spec.build) is SFRSLoss and resolve(spec.config_cls) is SFRSConfig


def test_the_method_names_its_parts() -> None:
    method = isolated_manager(PLUGINS).registries().methods.get("sfrs")
    assert (method.model, method.loss, method.trainer) == ("netvlad", "sfrs", "region-generations")
    assert method.train_dataset == "pitts30k-train"
    assert resolve(method.weights_loader) is load_sfrs_weights
    assert set(method.profiles) == {"paper", "quick"}
    paper = method.profiles["paper"]
    # OpenIBL scripts/train_sfrs_dist.sh: 4 generations x 5 epochs, 10 of 20 positives.
    assert (paper["trainer.generations"], paper["trainer.epochs"]) == (4, 5)
    assert (paper["trainer.pos_num"], paper["trainer.pos_pool"]) == (10, 20)
    assert paper["loss.temperatures"] == (0.07, 0.07, 0.06, 0.05)
    assert paper["trainer.select_metric"] == "R@5" and paper["pca_dim"] == 4096
    assert method.profiles["quick"]["trainer.generations"] >= 2  # re-ranking, teacher, re-init
    assert method.checkpoints == (OPENIBL_SFRS, OPENIBL_SFRS_HUB)


def test_paper_rows() -> None:
    method = isolated_manager(PLUGINS).registries().methods.get("sfrs")
    zoo = {r.dataset: dict(r.metrics) for r in method.paper if "MODEL_ZOO" in r.source}
    assert zoo == {
        "pitts250k-test": {"R@1": 90.7, "R@5": 96.4, "R@10": 97.6},
        "tokyo247": {"R@1": 85.4, "R@5": 91.1, "R@10": 93.3},
    }
    clusvpr = {r.dataset: dict(r.metrics) for r in method.paper if "ClusVPR" in r.source}
    assert clusvpr == {
        "pitts30k-test": {"R@1": 89.4, "R@5": 94.7},
        "pitts250k-test": {"R@1": 90.7, "R@5": 96.4},
        "tokyo247": {"R@1": 85.4, "R@5": 91.1},
        "tokyotm-val": {"R@1": 95.8, "R@5": 98.2},
        "msls-val": {"R@1": 77.2, "R@5": 82.5},
    }
    registries = isolated_manager(PLUGINS).registries()
    for row in method.paper:  # every row names a protocol the harness knows
        registries.dataset_split(row.dataset)


def test_checkpoints() -> None:
    zoo, hub = OPENIBL_SFRS, OPENIBL_SFRS_HUB
    assert (zoo.tag, hub.tag) == ("openibl-sfrs", "openibl-sfrs-hub")
    assert zoo.file.uri.startswith("https://drive.google.com/drive/folders/1FLjxFhKRO-YJQ6FI")
    assert zoo.file_name == "model_best.pth.tar" and resolve(zoo.load) is load_sfrs_weights
    assert hub.file.uri == (
        "https://github.com/yxgeee/OpenIBL/releases/download/v0.1.0-beta/vgg16_netvlad.pth"
    )
    assert hub.file_name == "vgg16_netvlad.pth" and resolve(hub.load) is load_openibl_weights
    for ckpt in (zoo, hub):
        assert ckpt.file.sha256 is None  # none published; records carry the file's
        assert ckpt.trained_on == "pitts30k-train"
        assert dict(ckpt.overrides) == {
            "model.backbone": "vgg16",
            "model.num_clusters": 64,
            "model.variant": "openibl",
            "pca_dim": 4096,
        }
        assert {r.dataset for r in ckpt.reported} == {"pitts250k-test", "tokyo247"}


def test_plugin_import_does_not_import_torch() -> None:
    code = "import sys, vpr_bench_sfrs, vpr_bench_sfrs.plugin; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
