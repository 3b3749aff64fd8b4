"""A tiny synthetic street for training tests: a 1-D strip of procedural facades.

Every image is a 32x32 view of the strip centred at its easting; queries are seen under a
"night" transform (darker, blue tint, noise), so an untrained network matches them poorly and
training has something to learn.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from vpr_bench.data.split import GeoSplit, ImageRecord
from vpr_bench.protocol import EvalProtocol

SIZE = 32
METRES_PER_COLUMN = 0.5


def _strip(seed: int, length_m: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n_cols = int(length_m / METRES_PER_COLUMN) + 4 * SIZE
    # Facades: runs of constant colour with random widths, plus window rows.
    colours = np.empty((n_cols, 3), dtype=np.float32)
    col = 0
    while col < n_cols:
        width = int(rng.integers(3, 12))
        colours[col : col + width] = rng.uniform(0, 255, size=3)
        col += width
    windows = rng.uniform(0, 1, size=(SIZE, n_cols)) > 0.7
    strip = np.repeat(colours[None], SIZE, axis=0)
    strip[windows] *= 0.4
    return strip


def _render(strip: np.ndarray, easting: float, night: bool, rng: np.random.Generator) -> np.ndarray:
    centre = int(easting / METRES_PER_COLUMN) + 2 * SIZE
    shift = int(rng.integers(-2, 3))
    view = strip[:, centre - SIZE // 2 + shift : centre + SIZE // 2 + shift].copy()
    if night:
        view = view * 0.35 + np.array([0.0, 10.0, 60.0], dtype=np.float32)
        view += rng.normal(0, 8, size=view.shape)
    return np.clip(view, 0, 255).astype(np.uint8)


def make_split(
    root: Path,
    name: str,
    *,
    seed: int,
    n_db: int,
    n_q: int,
    spacing_m: float = 5.0,
    protocol: EvalProtocol | None = None,
) -> GeoSplit:
    """Write PNGs under ``root/name`` and return the split (database every ``spacing_m``)."""
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    length = n_db * spacing_m
    strip = _strip(seed, length)
    rng = np.random.default_rng(seed + 1)
    database, queries = [], []
    for i in range(n_db):
        east = i * spacing_m
        path = folder / f"db_{i:04d}.png"
        Image.fromarray(_render(strip, east, False, rng)).save(path)
        database.append(ImageRecord(path=path, easting=east, northing=0.0))
    for i in range(n_q):
        east = float(rng.uniform(0, length - spacing_m))
        path = folder / f"q_{i:04d}.png"
        Image.fromarray(_render(strip, east, True, rng)).save(path)
        queries.append(ImageRecord(path=path, easting=east, northing=0.0, condition="night"))
    return GeoSplit(
        name=name, database=tuple(database), queries=tuple(queries), protocol=protocol, root=root
    )


VAL_PROTOCOL = EvalProtocol("synthstrip-val", split="val", radius_m=10.0, recall_ns=(1, 5))
TEST_PROTOCOL = EvalProtocol("synthstrip-test", split="test", radius_m=10.0, recall_ns=(1, 5))


def tiny_context(
    root: Path,
    run_dir: Path,
    *,
    epochs: int = 2,
    resume: bool = False,
    checkpoint_every_steps: int = 2,
    emit=None,
    with_val: bool = False,
    **overrides: object,
):
    """A deterministic triplet-mining context on a tiny strip (the same on every call)."""
    from vpr_bench.builtin.tiny_model import TinyGeMConfig, build_tiny_gem
    from vpr_bench.builtin.triplet import TripletLoss
    from vpr_bench.specs import IMAGENET
    from vpr_bench.train.context import TrainContext
    from vpr_bench.train.tuples import TripletMiningConfig

    train = make_split(root, "train", seed=1, n_db=32, n_q=16)
    val = (
        make_split(root, "val", seed=2, n_db=20, n_q=10, protocol=VAL_PROTOCOL)
        if with_val
        else None
    )
    options = dict(
        epochs=epochs,
        lr=0.01,
        cache_queries=8,
        neg_num=4,
        neg_pool=16,
        tuples_per_step=2,
        cache_images=True,
        checkpoint_every_steps=checkpoint_every_steps,
        step_size=1,
        gamma=0.5,
        # OpenIBL's jitter: the resume and 2-process tests then also prove that every image's
        # jitter is the same after a resume and on whichever rank loads it.
        color_jitter=(0.7, 0.7, 0.7, 0.5),
    )
    options.update(overrides)
    config = TripletMiningConfig(**options)  # type: ignore[arg-type]
    kwargs = {"emit": emit} if emit is not None else {}
    return TrainContext(
        model=build_tiny_gem(TinyGeMConfig(width=4, dim=16, norm="none", seed=0)),
        loss=TripletLoss(),
        config=config,
        train_split=train,
        val_split=val,
        preprocess=IMAGENET,
        run_dir=run_dir,
        seed=7,
        resume=resume,
        **kwargs,
    )


class RegionTinyGeM(torch.nn.Module):
    """The tiny GeM model with three regions: whole image, left half, right half.

    ``forward(images)`` is region 0; ``forward(images, regions=True)`` gives ``[B, 3, D]``.
    """

    region_count = 3

    def __init__(self) -> None:
        from vpr_bench.builtin.tiny_model import TinyGeMConfig, build_tiny_gem

        super().__init__()
        self.base = build_tiny_gem(TinyGeMConfig(width=4, dim=16, norm="none", seed=0))
        self.descriptor_dim = self.base.descriptor_dim

    def _pool(self, feats: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.base.proj(self.base.pool(feats)), dim=1)

    def forward(self, images: torch.Tensor, regions: bool = False) -> torch.Tensor:
        feats = self.base.features(images)
        whole = self._pool(feats)
        if not regions:
            return whole
        half = feats.shape[3] // 2
        parts = [whole, self._pool(feats[..., :half]), self._pool(feats[..., half:])]
        return torch.stack(parts, dim=1)


class ToyRegionLoss(torch.nn.Module):
    """A small ``region-tuples`` loss: SARE-ind on global regions plus the teacher's soft term.

    Records the shapes and generations it was called with (``calls``).
    """

    def __init__(self, temperature: float = 0.1, soft_weight: float = 0.5) -> None:
        super().__init__()
        self.temperature = temperature
        self.soft_weight = soft_weight
        self.calls: list[dict[str, object]] = []
        self.checked: int | None = None

    def check_generations(self, generations: int) -> None:
        self.checked = generations

    def forward(
        self,
        anchors: torch.Tensor,
        pairs: torch.Tensor,
        sim_diff: torch.Tensor,
        sim_diff_teacher: torch.Tensor,
        diff_mask: torch.Tensor,
        generation: int,
    ) -> torch.Tensor:
        self.calls.append(
            {
                "anchors": tuple(anchors.shape),
                "pairs": tuple(pairs.shape),
                "sim_diff": tuple(sim_diff.shape),
                "mask": diff_mask.clone(),
                "generation": generation,
                "teacher_grad": sim_diff_teacher.requires_grad,
            }
        )
        sims = torch.einsum("bl,bml->bm", anchors[:, 0], pairs[:, :, 0]) / self.temperature
        hard = F.softplus(sims[:, 1:] - sims[:, :1]).mean()
        student = sim_diff[:, :, 0, :] / self.temperature  # [B, P, R]
        teacher = sim_diff_teacher[:, :, 0, :] / self.temperature
        mask = diff_mask[:, :, None].expand_as(student).reshape(len(student), -1)
        neg_inf = torch.finfo(student.dtype).min
        log_p = torch.log_softmax(student.reshape(len(student), -1).masked_fill(~mask, neg_inf), 1)
        target = torch.softmax(teacher.reshape(len(teacher), -1).masked_fill(~mask, neg_inf), 1)
        soft = -(target * log_p).masked_fill(~mask, 0.0).sum(1).mean()
        return hard + (self.soft_weight if generation > 0 else 0.0) * soft


def region_context(
    root: Path,
    run_dir: Path,
    *,
    generations: int = 3,
    epochs: int = 2,
    resume: bool = False,
    checkpoint_every_steps: int = 2,
    emit=None,
    loss: torch.nn.Module | None = None,
    device: str = "cpu",
    **overrides: object,
):
    """A deterministic region-generations context on the tiny strip (the same on every call)."""
    from vpr_bench.specs import IMAGENET
    from vpr_bench.train.context import TrainContext
    from vpr_bench.train.generations import RegionGenerationsConfig

    train = make_split(root, "train", seed=1, n_db=32, n_q=16, spacing_m=2.5)
    options = dict(
        generations=generations,
        epochs=epochs,
        lr=0.01,
        cache_queries=8,
        neg_num=3,
        neg_pool=16,
        pos_num=3,
        pos_pool=5,
        rerank_k1=6,
        tuples_per_step=2,
        cache_images=True,
        checkpoint_every_steps=checkpoint_every_steps,
        step_size=1,
        gamma=0.5,
        color_jitter=(0.7, 0.7, 0.7, 0.5),
    )
    options.update(overrides)
    config = RegionGenerationsConfig(**options)  # type: ignore[arg-type]
    kwargs = {"emit": emit} if emit is not None else {}
    return TrainContext(
        model=RegionTinyGeM(),
        loss=loss if loss is not None else ToyRegionLoss(),
        config=config,
        train_split=train,
        preprocess=IMAGENET,
        run_dir=run_dir,
        device=device,
        seed=7,
        resume=resume,
        **kwargs,
    )
