"""A tiny DISAM training setup shared by the training tests and their kill target."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from vpr_bench import Preprocess
from vpr_bench.data import GeoSplit, ImageRecord
from vpr_bench.train import TrainContext
from vpr_bench_disam.config import DisamConfig
from vpr_bench_disam.loss import DisamLoss, DisamLossConfig
from vpr_bench_disam.model import build_disam
from vpr_bench_disam.trainer import DisamGanConfig

DOMAINS = ("a", "b", "c")


def make_images(root: Path, per_domain: int = 3) -> GeoSplit:
    """Random 20x24 images, ``per_domain`` per domain (the domain in ``ImageRecord.domain``)."""
    rng = np.random.default_rng(0)
    records = []
    for domain in DOMAINS:
        for i in range(per_domain):
            path = root / domain / f"{i}.png"
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                pixels = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(path)
            records.append(ImageRecord(path=path, domain=domain))
    return GeoSplit(name="toy-train", database=tuple(records), queries=(), root=root)


def context(
    root: Path,
    run_dir: Path,
    *,
    resume: bool = False,
    emit: Callable[[Any], None] | None = None,
    **trainer: Any,
) -> TrainContext:
    """A 3-domain model (2-wide, 16x16), the fine loss, 2 epochs of 4 steps."""
    model = build_disam(
        DisamConfig(n_domains=3, domains=DOMAINS, ngf=2, netg_blocks=2, image_size=16, seed=1)
    )
    loss = DisamLoss(DisamLossConfig(train_using_cos=True, mean_cos=True, cos_latent_with_l2=True))
    options = {
        "niter": 1,
        "niter_decay": 1,
        "epoch_length": 4,
        "load_size": 18,
        "crop_size": 16,
        "ndf": 4,
        "pool_size": 2,
        "checkpoint_every_steps": 1,
        **trainer,
    }
    extra = {"emit": emit} if emit is not None else {}
    return TrainContext(
        model=model,
        loss=loss,
        config=DisamGanConfig(**options),
        train_split=make_images(root),
        preprocess=Preprocess(mean=(0.5,) * 3, std=(0.5,) * 3),
        run_dir=run_dir,
        seed=5,
        method="disam-fine",
        resume=resume,
        **extra,
    )
