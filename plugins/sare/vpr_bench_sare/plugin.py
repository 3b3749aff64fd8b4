"""vpr-bench hooks of the SARE plugin: losses ``sare-ind``/``sare-joint``, methods ``sare`` and
``sare-joint`` (both on the ``netvlad`` model of the NetVLAD plugin).

Pure data: heavy objects are lazy ``"pkg.mod:obj"`` targets.
"""

from __future__ import annotations

from collections.abc import Iterator

from vpr_bench import BatchKind, Checkpoint, LossSpec, MethodSpec, PaperResult, RemoteFile, hookimpl
from vpr_bench_netvlad.plugin import PAPER_PROFILE, QUICK_PROFILE

__all__ = ["vpr_bench_losses", "vpr_bench_methods"]

_PROFILES = {
    name: {k: v for k, v in profile.items() if not k.startswith("loss.")}
    for name, profile in (("paper", PAPER_PROFILE), ("quick", QUICK_PROFILE))
}
"""The NetVLAD profiles without their ``loss.*`` keys: OpenIBL trains SARE with the same model,
data, mining, optimiser and schedule (methods.md section 3), and SAREConfig has no options."""

_JOINT_PROFILES = {
    "paper": _PROFILES["paper"],
    "quick": _PROFILES["quick"],
}
"""SARE-joint trains with NetVLAD's quick and paper settings (OpenIBL's lr 1e-3). Its quick
profile once used lr 3e-3, chosen when the tiny trunk's BatchNorm statistics still broke the
k-means initialisation in the first steps (val R@1 34.0 at 1e-3, 40.7 at 3e-3). Since prepare
sets those statistics first (2026-11-30, synthcity-small, seed 43): lr 3e-3 fell below the
untrained model (test R@1 32.7, untrained 35.0) while 1e-3 learns (test 41.8 in ``make demo``;
43.8 in a run with one torch thread, whose reductions take another path)."""

_ZOO = "OpenIBL docs/MODEL_ZOO.md:5-10, methods.md 7.1"
SARE_IND_ZOO_ROWS = (
    PaperResult(
        "pitts250k-test",
        {"R@1": 88.4, "R@5": 95.0, "R@10": 96.5},
        source=_ZOO,
        variant="OpenIBL SARE_ind, VGG16 + NetVLAD-64 + PCA-w 4096, trained on Pitts30k",
    ),
    PaperResult(
        "tokyo247",
        {"R@1": 81.0, "R@5": 88.6, "R@10": 90.2},
        source=_ZOO,
        variant="OpenIBL SARE_ind, VGG16 + NetVLAD-64 + PCA-w 4096, trained on Pitts30k",
    ),
)

_CLUSVPR = "ClusVPR paper, Table I (figs/clusvpr_quantitative_results.png), methods.md 7.3"
_CLUSVPR_VARIANT = "'SARE' as cited by ClusVPR (ind or joint is not stated)"
SARE_CLUSVPR_ROWS = tuple(
    PaperResult(dataset, metrics, source=_CLUSVPR, variant=_CLUSVPR_VARIANT)
    for dataset, metrics in (
        ("pitts30k-test", {"R@1": 87.2, "R@5": 93.8}),
        ("pitts250k-test", {"R@1": 89.0, "R@5": 95.5}),
        ("tokyo247", {"R@1": 79.7, "R@5": 86.7}),
        ("tokyotm-val", {"R@1": 94.5, "R@5": 96.7}),
        ("msls-val", {"R@1": 76.4, "R@5": 81.6}),
    )
)

OPENIBL_SARE_IND = Checkpoint(
    tag="openibl-sare-ind",
    file=RemoteFile(
        # The Google Drive folder linked from OpenIBL docs/MODEL_ZOO.md (SARE_ind row); it
        # holds model_best.pth.tar. No sha256 is published.
        "https://drive.google.com/drive/folders/1ZNGdXVRwUJvGH0ZJdwy18A8e9H0wnFHc?usp=sharing"
    ),
    trained_on="pitts30k-train",
    overrides={
        "model.backbone": "vgg16",
        "model.num_clusters": 64,
        "model.variant": "openibl",
        "pca_dim": 4096,
    },
    reported=SARE_IND_ZOO_ROWS,
    license="MIT (OpenIBL repository)",
    filename="model_best.pth.tar",
    load="vpr_bench_netvlad.checkpoint:load_openibl_weights",
)


@hookimpl
def vpr_bench_losses() -> Iterator[LossSpec]:
    """Register ``sare-ind`` and ``sare-joint``."""
    yield LossSpec(
        name="sare-ind",
        build="vpr_bench_sare.loss:SAREIndLoss",
        config_cls="vpr_bench_sare.loss:SAREConfig",
        batch_kind=BatchKind.TUPLES,
        summary="SARE-ind: 2-way softmax per negative on -squared L2 (OpenIBL, no temperature)",
    )
    yield LossSpec(
        name="sare-joint",
        build="vpr_bench_sare.loss:SAREJointLoss",
        config_cls="vpr_bench_sare.loss:SAREConfig",
        batch_kind=BatchKind.TUPLES,
        summary="SARE-joint: softmax over positive + all negatives on -squared L2 (OpenIBL)",
    )


@hookimpl
def vpr_bench_methods() -> Iterator[MethodSpec]:
    """Register ``sare`` (SARE-ind) and ``sare-joint``."""
    yield MethodSpec(
        name="sare",
        model="netvlad",
        loss="sare-ind",
        trainer="triplet-mining",
        train_dataset="pitts30k-train",
        weights_loader="vpr_bench_netvlad.checkpoint:load_openibl_weights",
        profiles=_PROFILES,
        paper=SARE_IND_ZOO_ROWS + SARE_CLUSVPR_ROWS,
        checkpoints=(OPENIBL_SARE_IND,),
        summary="NetVLAD trained with SARE-ind (OpenIBL recipe)",
    )
    yield MethodSpec(
        name="sare-joint",
        model="netvlad",
        loss="sare-joint",
        trainer="triplet-mining",
        train_dataset="pitts30k-train",
        weights_loader="vpr_bench_netvlad.checkpoint:load_openibl_weights",
        profiles=_JOINT_PROFILES,
        summary="NetVLAD trained with SARE-joint (OpenIBL recipe); no published numbers",
    )
