"""vpr-bench hooks of the SFRS plugin: loss ``sfrs`` and method ``sfrs`` (on the ``netvlad``
model of the NetVLAD plugin, trained by the ``region-generations`` trainer).

Pure data: heavy objects are lazy ``"pkg.mod:obj"`` targets.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from vpr_bench import BatchKind, Checkpoint, LossSpec, MethodSpec, PaperResult, RemoteFile, hookimpl
from vpr_bench_netvlad.plugin import PAPER_PROFILE as NETVLAD_PAPER
from vpr_bench_netvlad.plugin import QUICK_PROFILE as NETVLAD_QUICK

__all__ = [
    "OPENIBL_SFRS",
    "PAPER_PROFILE",
    "QUICK_PROFILE",
    "OPENIBL_SFRS_HUB",
    "SFRS_CLUSVPR_ROWS",
    "SFRS_ZOO_ROWS",
    "vpr_bench_losses",
    "vpr_bench_methods",
]

PAPER_PROFILE: dict[str, Any] = {
    **NETVLAD_PAPER,
    "loss.hard": "sare-ind",
    "loss.temperatures": (0.07, 0.07, 0.06, 0.05),
    "loss.soft_weight": 0.5,
    "trainer.generations": 4,
    "trainer.epochs": 5,
    "trainer.pos_num": 10,
    "trainer.pos_pool": 20,
    "trainer.reinit_student": True,
    "trainer.rerank_k1": 20,
    "trainer.rerank_k2": 1,
    "trainer.rerank_lambda": 0.1,
}
"""OpenIBL's ``scripts/train_sfrs_dist.sh:21-29`` (methods.md 4): NetVLAD's recipe (VGG16 conv5,
64 clusters, 480x640, SGD 1e-3, StepLR(5, 0.5), 10 of 1000 negatives, 4 GPUs x 1 tuple, jitter,
model chosen by R@5, PCA-w 4096) plus 4 generations of 5 epochs (generation 0: one), 10
difficult positives out of 20, temperatures 0.07/0.07/0.06/0.05, soft weight 0.5 and
re-ranking with k1 20, k2 1, lambda 0.1."""

QUICK_PROFILE: dict[str, Any] = {
    **{k: v for k, v in NETVLAD_QUICK.items()},
    "loss.hard": "triplet",
    "loss.temperatures": (0.07, 0.07),
    "loss.soft_weight": 0.5,
    "trainer.generations": 2,
    "trainer.epochs": 2,
    "trainer.pos_num": 2,
    "trainer.pos_pool": 4,
}
"""CPU-sized (synthcity, the tiny trunk, as NetVLAD's quick profile): 2 generations (1 + 2
epochs) so that the re-ranking, the teacher and the student's re-initialisation all run, 2
difficult positives of 4, and the ``triplet`` hard term instead of the recipe's ``sare-ind``.

Chosen on synthcity-val, reported on test (seed 43, 2 CPU cores; untrained 35.0 R@1): with
``sare-ind`` (cosines / 0.07) and 1 epoch per generation the tiny trunk barely moved (val R@1
33.3 -> 33.7; test 32.0, and 29.5 at lr 3e-3); the ``triplet`` hard term, NetVLAD's loss, learns
within the epoch (val 38.7 after generation 0; test 38.3 with 1 epoch in generation 1, 43.2 with
2). ``vpr-bench run --plugins netvlad,sfrs --dataset synthcity --profile quick`` took 5 min 30 s
on an idle machine (2026-11-30): untrained 35.0, netvlad 43.3, sfrs 43.2. With NetVLAD's quick
profile's InstanceNorm stem (inherited; same day): untrained 50.7, netvlad 67.8, sfrs 67.2."""

_ZOO = "OpenIBL docs/MODEL_ZOO.md:9-10, methods.md 7.1"
_ZOO_VARIANT = "OpenIBL SFRS, VGG16 + NetVLAD-64 + PCA-w 4096, trained on Pitts30k"
SFRS_ZOO_ROWS = (
    PaperResult(
        "pitts250k-test", {"R@1": 90.7, "R@5": 96.4, "R@10": 97.6}, _ZOO, variant=_ZOO_VARIANT
    ),
    PaperResult("tokyo247", {"R@1": 85.4, "R@5": 91.1, "R@10": 93.3}, _ZOO, variant=_ZOO_VARIANT),
)
"""OpenIBL's model zoo: the numbers of its released SFRS model (both checkpoints below)."""

_CLUSVPR = "ClusVPR paper, Table I (figs/clusvpr_quantitative_results.png), methods.md 7.3"
SFRS_CLUSVPR_ROWS = tuple(
    PaperResult(dataset, metrics, source=_CLUSVPR, variant="SFRS as cited by ClusVPR")
    for dataset, metrics in (
        ("pitts30k-test", {"R@1": 89.4, "R@5": 94.7}),
        ("pitts250k-test", {"R@1": 90.7, "R@5": 96.4}),
        ("tokyo247", {"R@1": 85.4, "R@5": 91.1}),
        ("tokyotm-val", {"R@1": 95.8, "R@5": 98.2}),
        ("msls-val", {"R@1": 77.2, "R@5": 82.5}),
    )
)
"""SFRS in ClusVPR's comparison table (R@1/R@5 only); Pitts250k and Tokyo 24/7 agree with the
model zoo."""

_OPENIBL_OVERRIDES: dict[str, Any] = {
    "model.backbone": "vgg16",
    "model.num_clusters": 64,
    "model.variant": "openibl",
    "pca_dim": 4096,
}

OPENIBL_SFRS = Checkpoint(
    tag="openibl-sfrs",
    file=RemoteFile(
        # The Google Drive folder linked from OpenIBL docs/MODEL_ZOO.md:9 (SFRS row); it holds
        # model_best.pth.tar. No sha256 is published (records carry the file's own).
        "https://drive.google.com/drive/folders/1FLjxFhKRO-YJQ6FI-DcCMMHDL2K_Hsof?usp=sharing"
    ),
    trained_on="pitts30k-train",
    overrides=_OPENIBL_OVERRIDES,
    reported=SFRS_ZOO_ROWS,
    license="MIT (OpenIBL repository)",
    filename="model_best.pth.tar",
    load="vpr_bench_sfrs.checkpoint:load_sfrs_weights",
)
"""SFRS's training checkpoint (no PCA inside: it is fitted on Pitts30k-train, as OpenIBL does)."""

OPENIBL_SFRS_HUB = Checkpoint(
    tag="openibl-sfrs-hub",
    file=RemoteFile(
        # OpenIBL hubconf.py:10; README.md:40 calls it the best SFRS model with PCA. No sha256
        # is published.
        "https://github.com/yxgeee/OpenIBL/releases/download/v0.1.0-beta/vgg16_netvlad.pth"
    ),
    trained_on="pitts30k-train",
    overrides=_OPENIBL_OVERRIDES,
    reported=SFRS_ZOO_ROWS,
    license="MIT (OpenIBL repository)",
    load="vpr_bench_netvlad.checkpoint:load_openibl_weights",
)
"""OpenIBL's torch-hub release: SFRS's best model with its 4096-d PCA-whitening folded in
(``pca_layer``, methods.md 8.2)."""


@hookimpl
def vpr_bench_losses() -> Iterator[LossSpec]:
    """Register ``sfrs``."""
    yield LossSpec(
        name="sfrs",
        build="vpr_bench_sfrs.loss:SFRSLoss",
        config_cls="vpr_bench_sfrs.loss:SFRSConfig",
        batch_kind=BatchKind.REGION_TUPLES,
        summary="SFRS: SARE-ind on cosines/0.07 with hardest negative regions + soft region "
        "labels from the previous generation (OpenIBL)",
    )


@hookimpl
def vpr_bench_methods() -> Iterator[MethodSpec]:
    """Register ``sfrs`` (profiles ``paper`` and ``quick``)."""
    yield MethodSpec(
        name="sfrs",
        model="netvlad",
        loss="sfrs",
        trainer="region-generations",
        train_dataset="pitts30k-train",
        weights_loader="vpr_bench_sfrs.checkpoint:load_sfrs_weights",
        profiles={"paper": PAPER_PROFILE, "quick": QUICK_PROFILE},
        paper=SFRS_ZOO_ROWS + SFRS_CLUSVPR_ROWS,
        checkpoints=(OPENIBL_SFRS, OPENIBL_SFRS_HUB),
        summary="NetVLAD trained with SFRS's region losses over 4 generations (OpenIBL recipe)",
    )
