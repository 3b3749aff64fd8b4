"""vpr-bench hooks of the DISAM plugin: models ``disam`` and ``disam-c2f``, loss ``disam``,
datasets ``cmu-seasons`` and ``robotcar-seasons`` (DISAM's re-packaged layout).

DISAM (Hu et al., IEEE/CAA JAS 2021, arXiv 2009.07719; code HanjiangHu/DISAM) trains a ComboGAN
plexer whose encoders give domain-invariant 256x64x64 codes (methods.md Part A). The released
weights are listed here as :class:`~vpr_bench.Checkpoint` s; they are attached to the DISAM
methods once the ``disam-gan`` trainer is registered (README, "Status").

Pure data: heavy objects are lazy ``"pkg.mod:obj"`` targets, so listing does not import torch.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from vpr_bench import (
    BatchKind,
    Checkpoint,
    DatasetSpec,
    EvalProtocol,
    EvaluatorSpec,
    LossSpec,
    MethodSpec,
    ModelSpec,
    Preprocess,
    RemoteFile,
    ResizePolicy,
    TrainerSpec,
    hookimpl,
)

__all__ = [
    "CMU_CHECKPOINTS",
    "CMU_PROTOCOLS",
    "COARSE_LOSS",
    "DRIVE_ARCHIVE",
    "FINE_LOSS",
    "PAPER_PROFILE",
    "QUICK_PROFILE",
    "LEADERBOARD_ENTRIES",
    "PREPROCESS",
    "ROBOTCAR_CHECKPOINTS",
    "ROBOTCAR_PROTOCOL",
    "vpr_bench_datasets",
    "vpr_bench_evaluators",
    "vpr_bench_losses",
    "vpr_bench_methods",
    "vpr_bench_models",
    "vpr_bench_trainers",
]

PREPROCESS = Preprocess(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), train_size=(256, 256))
"""DISAM's input convention (``data/base_dataset.py:17-51``): [0, 1] pixels normalised with mean
and std 0.5 (range [-1, 1]); 256x256 crops for training. The CMU and RobotCar protocols squash
every test image to 256 x 256 with Pillow's bicubic (:data:`TEST_RESIZE`); on other datasets
(synthcity) the images reach the model at their native size and it squashes them to
``model.image_size`` squared itself (torch's antialiased bicubic)."""

TEST_RESIZE = ResizePolicy.hard(256, 256, interpolation="bicubic")
"""DISAM's test transform (methods.md A.3, ``base_dataset.py:17-51``): Pillow's bicubic resize to
exactly 256 x 256, aspect ratio not kept. A model of ``image_size`` 256 then takes the images as
they come; another size resizes them again in its forward."""

DRIVE_ARCHIVE = RemoteFile(
    # DISAM README.md "pretrained models ... HERE": a Google Drive page, downloaded by hand;
    # no sha256 is published (records carry the file's own).
    "https://drive.google.com/file/d/1YM_kkVkwNpVXV8Iv38JjEZImcDYLdHsZ/view?usp=sharing"
)
"""The authors' archive of trained models: per its README the CMU-Seasons coarse and fine models
(tested at epoch 1200), RobotCar ones (CMU encoders copied per domain after the paper's Table I,
10 domains) and the epoch-300 image-translation models."""

_ARCHIVE_NAME = "checkpoints.zip"
"""The name the archive is looked for under in the weights folder. The README does not name the
Drive file; a copy saved under another name is given with ``--weights``."""

LEADERBOARD_ENTRIES = {
    "cmu-coarse": "https://www.visuallocalization.net/details/13316/",
    "cmu-fine": "https://www.visuallocalization.net/details/13379/",
    "cmu-coarse-to-fine": "https://www.visuallocalization.net/details/13380/",
    "robotcar-coarse": "https://www.visuallocalization.net/details/13383/",
    "robotcar-fine": "https://www.visuallocalization.net/details/13482/",
}
"""The authors' visuallocalization.net submissions (README "Results"). Their numbers are not in
the repository or its README, so DISAM has no paper rows (methods.md A.6)."""

_LICENSE = "no license file in the DISAM repository; ask the authors"


def _checkpoint(tag: str, load: str, overrides: dict[str, Any], trained_on: str) -> Checkpoint:
    return Checkpoint(
        tag=tag,
        file=DRIVE_ARCHIVE,
        trained_on=trained_on,
        overrides=overrides,
        license=_LICENSE,
        filename=_ARCHIVE_NAME,
        load=load,
    )


_CMU = {"model.n_domains": 12, "model.ngf": 64, "model.image_size": 256}
_ROBOTCAR = {
    "model.n_domains": 10,
    "model.domains": tuple(f"robotcar-{i:02d}" for i in range(10)),
    "model.ngf": 64,
    "model.image_size": 256,
}

CMU_CHECKPOINTS = (
    _checkpoint(
        "disam-cmu-coarse",
        "vpr_bench_disam.released:load_cmu_coarse",
        {**_CMU, "model.descriptor": "mean-cos"},
        "cmu-seasons-urban-train",
    ),
    _checkpoint(
        "disam-cmu-fine",
        "vpr_bench_disam.released:load_cmu_fine",
        {**_CMU, "model.descriptor": "cos"},
        "cmu-seasons-urban-train",
    ),
    _checkpoint(
        "disam-cmu",
        "vpr_bench_disam.released:load_cmu",
        {**_CMU, "model.descriptor": "mean-cos", "model.fine_descriptor": "cos", "model.top_n": 3},
        "cmu-seasons-urban-train",
    ),
)
"""``CMU_coarse`` and ``CMU_fine`` at epoch 1200 (README test commands): 12 encoders each;
``disam-cmu`` holds both for the coarse-to-fine model (``disam-c2f``, top 3 re-ranked)."""

ROBOTCAR_CHECKPOINTS = (
    _checkpoint(
        "disam-robotcar-coarse",
        "vpr_bench_disam.released:load_robotcar_coarse",
        {**_ROBOTCAR, "model.descriptor": "mean-cos"},
        "cmu-seasons-urban-train",
    ),
    _checkpoint(
        "disam-robotcar-fine",
        "vpr_bench_disam.released:load_robotcar_fine",
        {**_ROBOTCAR, "model.descriptor": "mean-cos"},
        "cmu-seasons-urban-train",
    ),
)
"""``robotcar_coarse`` / ``robotcar_fine`` at epoch 1200: CMU encoders mapped to RobotCar's 10
domains by the authors. The README's RobotCar fine-only run compares by mean cosine
(``--mean_cos``, methods.md A.5), unlike CMU's fine-only run."""


@hookimpl
def vpr_bench_models() -> Iterator[ModelSpec]:
    """Register ``disam`` and ``disam-c2f``."""
    yield ModelSpec(
        name="disam",
        build="vpr_bench_disam.model:build_disam",
        config_cls="vpr_bench_disam.config:DisamConfig",
        preprocess=PREPROCESS,
        summary="DISAM: one ComboGAN encoder per domain, the raw 256x64x64 code compared by "
        "channel-mean cosine (mean-cos) or cosine (1,048,576-d)",
    )
    yield ModelSpec(
        name="disam-c2f",
        build="vpr_bench_disam.model:build_disam_c2f",
        config_cls="vpr_bench_disam.config:DisamC2FConfig",
        preprocess=PREPROCESS,
        summary="DISAM coarse-to-fine: a coarse model's mean-cos search, its top 3 re-ranked by "
        "a fine (Grad-SAM) model's cosine",
    )


_CMU_PAPER = (
    "Sattler et al., Benchmarking 6DOF Outdoor Visual Localization in Changing Conditions, CVPR "
    "2018 (CMU-Seasons, from Badino et al.'s CMU Visual Localization data)"
)


_SERVER = (
    "no query poses here: the retrieved database image's pose is written as the query's "
    "(CMU_eval_<method>.txt / RobotCar_eval_<method>.txt beside the predictions) for "
    "visuallocalization.net to score"
)

CMU_PROTOCOLS = tuple(
    EvalProtocol(
        f"disam-cmu-{area}",
        version=2,
        split=area,
        db_resize=TEST_RESIZE,
        query_resize=TEST_RESIZE,
        ground_truth="none",
        recall_ns=(1,),
        notes=f"CMU-Seasons {area}, every slice; retrieval within slice and camera; {_SERVER}",
    )
    for area in ("urban", "suburban", "park")
)
"""One protocol per CMU area, images squashed to 256 x 256 as :data:`TEST_RESIZE`. Version 1
(never published) passed native images, resized inside the model by torch's antialiased
bicubic, close to but not Pillow's."""

ROBOTCAR_PROTOCOL = EvalProtocol(
    "disam-robotcar",
    version=2,
    split="test",
    db_resize=TEST_RESIZE,
    query_resize=TEST_RESIZE,
    ground_truth="none",
    recall_ns=(1,),
    notes=f"RobotCar-Seasons rear camera; {_SERVER}",
)


@hookimpl
def vpr_bench_datasets() -> Iterator[DatasetSpec]:
    """Register ``cmu-seasons`` and ``robotcar-seasons`` in DISAM's layout (datasets.md 7.2).

    Neither has query poses here: their protocols have no local ground truth, and the
    ``disam-submission`` evaluator writes the benchmark's submission file.
    """
    yield DatasetSpec(
        name="cmu-seasons",
        version=1,
        splits=("urban-train", "urban", "suburban", "park"),
        default_split="urban",
        load="vpr_bench_disam.seasons:load_cmu",
        protocols=CMU_PROTOCOLS,
        provides=frozenset({"train", "domains"}),
        paper=_CMU_PAPER,
        license="CC BY-NC-SA 3.0 (CMU-Seasons)",
        default_root="~/data/vpr/cmu-seasons-disam",
        summary="CMU-Seasons in DISAM's layout: CMU_<area>/s<Y>/test00-11 + pose_new_s<Y>.txt, "
        "urban train00-11; domain = folder index, retrieval within slice and camera",
    )
    yield DatasetSpec(
        name="robotcar-seasons",
        version=1,
        splits=("test",),
        load="vpr_bench_disam.seasons:load_robotcar",
        protocols=(ROBOTCAR_PROTOCOL,),
        provides=frozenset({"domains"}),
        paper="Maddern et al., 1 Year, 1000km: The Oxford RobotCar Dataset, IJRR 2017; Sattler "
        "et al., CVPR 2018 (RobotCar-Seasons)",
        license="CC BY-NC-SA 4.0 (RobotCar-Seasons)",
        default_root="~/data/vpr/robotcar-seasons-disam/RobotCar_rear",
        summary="RobotCar-Seasons rear camera in DISAM's layout: test00-09 + pose_new_rear.txt",
    )


@hookimpl
def vpr_bench_losses() -> Iterator[LossSpec]:
    """Register ``disam`` (the latent-code part of DISAM's generator loss)."""
    yield LossSpec(
        name="disam",
        build="vpr_bench_disam.loss:DisamLoss",
        config_cls="vpr_bench_disam.loss:DisamLossConfig",
        batch_kind=BatchKind.DOMAIN_IMAGES,
        summary="DISAM: adaptive triplet + latent (L2 or cosine) + Grad-SAM and SAM-triplet "
        "terms of four latent codes (A, B and each translated and re-encoded)",
    )


@hookimpl
def vpr_bench_evaluators() -> Iterator[EvaluatorSpec]:
    """Register ``disam-submission`` (no metrics; exports the benchmark file)."""
    yield EvaluatorSpec(
        name="disam-submission",
        metrics=(),
        compute="vpr_bench_disam.submit:no_metrics",
        requires_knn=1,
        export="vpr_bench_disam.submit:export_submission",
        summary="CMU/RobotCar-Seasons: the retrieved database pose per query, in the "
        "visuallocalization.net submission format",
    )


PAPER_PROFILE: dict[str, Any] = {
    "seed": 0,
    "train_dataset": "cmu-seasons-urban-train",
    "val_dataset": "",
    "pca_dim": None,
    "model.n_domains": 12,
    "model.ngf": 64,
    "model.netg_blocks": 9,
    "model.image_size": 256,
    "trainer.niter": 300,
    "trainer.niter_decay": 900,
    "trainer.init_epoch": 300,
    "trainer.require_init": True,
    "trainer.lr": 2e-4,
    "trainer.beta1": 0.5,
    "trainer.load_size": 286,
    "trainer.crop_size": 256,
    "trainer.pool_size": 50,
    "trainer.ndf": 64,
    "trainer.disc_layers": 4,
}
"""The README's commands (methods.md A.4): CMU_urban's 12 domains, 286 -> 256 crops, Adam 2e-4
(0.5, 0.999), fine-tuned from the authors' epoch-300 translation model (``trainer.init_from``,
refused without) over epochs 301-1200 (niter 300 and niter_decay 900 are inferred: the README
leaves XXX and its tests load epoch 1200). No validation: the last epoch is the model."""

QUICK_PROFILE: dict[str, Any] = {
    "seed": 43,
    "train_dataset": "synthcity-train",
    "val_dataset": "",
    "pca_dim": None,
    "model.n_domains": 6,
    "model.domains": ("day", "dusk", "night", "fog", "rain", "season"),
    "model.ngf": 16,
    "model.image_size": 64,
    "trainer.niter": 1,
    "trainer.niter_decay": 1,
    "trainer.epoch_length": 600,
    "trainer.load_size": 72,
    "trainer.crop_size": 64,
    "trainer.ndf": 16,
    # Adam 5e-4 instead of the paper's 2e-4: 1 200 steps from scratch are 1/1000 of the
    # paper's schedule. Chosen on val night+dusk R@1 of disam-coarse (synthcity v3, seed 43,
    # untrained 5.0): lr 2e-4 6.0 (6 epochs 6.0), 5e-4 14.0; lambda_triplet 10 gave 3.0,
    # lambda_latent 1 5.0, same_init 14.0 (untrained 15.0).
    "trainer.lr": 5e-4,
}
"""CPU-sized: synthcity's six conditions as domains (day the reference), 16-wide encoders on
64x64 crops (72 then cropped) from scratch, 16-wide discriminators, 2 epochs of 600 steps (the
first at the full weights, as a fresh reference run; the second at ramp 1/2, after which the
learning rate reaches 0)."""

COARSE_LOSS = {"loss.lambda_sam": 0.0}
"""``CMU_coarse``: ``--lambda_sam 0.0`` (no Grad-SAM terms)."""

FINE_LOSS = {"loss.train_using_cos": True, "loss.mean_cos": True, "loss.cos_latent_with_l2": True}
"""``CMU_fine``: ``--train_using_cos --mean_cos --use_cos_latent_with_L2`` (lambda_sam 1000)."""


def _profiles(loss: dict[str, Any], descriptor: str) -> dict[str, dict[str, Any]]:
    extra = {**loss, "model.descriptor": descriptor}
    return {"paper": {**PAPER_PROFILE, **extra}, "quick": {**QUICK_PROFILE, **extra}}


@hookimpl
def vpr_bench_trainers() -> Iterator[TrainerSpec]:
    """Register ``disam-gan``."""
    yield TrainerSpec(
        name="disam-gan",
        fit="vpr_bench_disam.trainer:fit",
        batch_kinds=(BatchKind.DOMAIN_IMAGES,),
        config_cls="vpr_bench_disam.trainer:DisamGanConfig",
        summary="DISAM's ComboGAN loop: two domains per step, G then D step, one Adam per "
        "domain, LSGAN + cycle + the disam loss, 50-image pools, ramped weights",
    )


@hookimpl
def vpr_bench_methods() -> Iterator[MethodSpec]:
    """Register ``disam-coarse``, ``disam-fine`` and ``disam`` (profiles ``paper``, ``quick``)."""
    yield MethodSpec(
        name="disam-coarse",
        model="disam",
        loss="disam",
        trainer="disam-gan",
        train_dataset="cmu-seasons-urban-train",
        profiles=_profiles(COARSE_LOSS, "mean-cos"),
        checkpoints=(CMU_CHECKPOINTS[0], ROBOTCAR_CHECKPOINTS[0]),
        summary="DISAM coarse model: ComboGAN encoders with the adaptive triplet and L2 latent "
        "losses (no Grad-SAM), compared by channel-mean cosine",
    )
    yield MethodSpec(
        name="disam-fine",
        model="disam",
        loss="disam",
        trainer="disam-gan",
        train_dataset="cmu-seasons-urban-train",
        profiles=_profiles(FINE_LOSS, "cos"),
        checkpoints=(CMU_CHECKPOINTS[1], ROBOTCAR_CHECKPOINTS[1]),
        summary="DISAM fine model: + Grad-SAM and SAM-triplet losses, cosine latent loss, "
        "compared by cosine",
    )
    c2f = {"model.descriptor": "mean-cos", "model.fine_descriptor": "cos", "model.top_n": 3}
    yield MethodSpec(
        name="disam",
        model="disam-c2f",
        loss="disam",
        trainer="disam-gan",
        train_dataset="cmu-seasons-urban-train",
        profiles={
            "paper": {**PAPER_PROFILE, **FINE_LOSS, **c2f},
            "quick": {**QUICK_PROFILE, **FINE_LOSS, **c2f},
        },
        checkpoints=(CMU_CHECKPOINTS[2],),
        after=("disam-coarse", "disam-fine"),
        summary="DISAM coarse-to-fine: the coarse model's mean-cos search, its top 3 re-ranked "
        "by the fine model's cosine (reuses the latest disam-coarse and disam-fine runs)",
    )
