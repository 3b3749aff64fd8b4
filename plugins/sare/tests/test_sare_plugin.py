"""What the SARE plugin registers: losses, methods, profiles, paper rows, checkpoint."""

from __future__ import annotations

import subprocess
import sys

from vpr_bench.config import apply_overrides
from vpr_bench.registry import resolve
from vpr_bench.testing import isolated_manager
from vpr_bench_sare.config import SAREMethodConfig
from vpr_bench_sare.loss import SAREConfig, SAREIndLoss, SAREJointLoss


def test_registrations() -> None:
    reg = isolated_manager(("vpr_bench_netvlad.plugin", "vpr_bench_sare.plugin")).registries()
    assert resolve(reg.losses.get("sare-ind").build) is SAREIndLoss
    assert resolve(reg.losses.get("sare-joint").build) is SAREJointLoss
    sare, joint = reg.methods.get("sare"), reg.methods.get("sare-joint")
    assert (sare.model, sare.loss, sare.trainer) == ("netvlad", "sare-ind", "triplet-mining")
    assert (joint.model, joint.loss) == ("netvlad", "sare-joint")
    assert sare.train_dataset == "pitts30k-train"
    zoo = {(r.dataset, r.metrics["R@1"]) for r in sare.paper if "MODEL_ZOO" in r.source}
    assert zoo == {("pitts250k-test", 88.4), ("tokyo247", 81.0)}
    (ckpt,) = sare.checkpoints
    assert ckpt.tag == "openibl-sare-ind" and ckpt.file.sha256 is None
    assert ckpt.file.uri.startswith("https://drive.google.com/drive/folders/")


def test_profiles_build_configs() -> None:
    reg = isolated_manager(("vpr_bench_netvlad.plugin", "vpr_bench_sare.plugin")).registries()
    for name in ("sare", "sare-joint"):
        method = reg.methods.get(name)
        assert resolve(method.config_cls) is SAREMethodConfig
        paper = apply_overrides(SAREMethodConfig(), method.profiles["paper"], source="paper")
        assert (paper.num_clusters, paper.pca_dim, paper.lr, paper.neg_num) == (64, 4096, 1e-3, 10)
        assert isinstance(paper.loss_config(), SAREConfig)
        quick = apply_overrides(SAREMethodConfig(), method.profiles["quick"], source="quick")
        assert quick.backbone == "tiny" and quick.pca_dim is None


def test_plugin_import_does_not_import_torch() -> None:
    code = "import sys, vpr_bench_sare.plugin; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
