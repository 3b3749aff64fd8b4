"""Training images of the ``disam-gan`` trainer: per-domain lists, loading, history pools.

Images are grouped by domain label (``domain``, else ``condition``), loaded as DISAM's
``unaligned_dataset`` does (shorter side resized bicubically, random square crop, optional
mirror, [-1, 1]) with every random draw from the step's generator, and the discriminators see
fakes through DISAM's 50-image history pool.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from vpr_bench.errors import ConfigError
from vpr_bench.train import TrainContext
from vpr_bench_disam.model import DisamModel

__all__ = ["ImagePool", "domain_images", "load_image"]


class ImagePool:
    """DISAM's ``util/image_pool.py``: a history of generated images, one per domain.

    Until full, a new image is stored and returned; afterwards, with probability 1/2 a random
    stored image is returned and replaced by the new one, else the new one is returned.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.images: list[torch.Tensor] = []

    def query(self, image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The image to show the discriminator for ``image`` ``[1, 3, H, W]`` (detached)."""
        image = image.detach()
        if self.size == 0:
            return image
        if len(self.images) < self.size:
            self.images.append(image.clone())
            return image
        if float(torch.rand((), generator=generator)) > 0.5:
            index = int(torch.randint(self.size, (), generator=generator))
            old = self.images[index].clone()
            self.images[index] = image.clone()
            return old
        return image

    def state(self) -> torch.Tensor:
        """The stored images as one tensor (``[0]`` when empty)."""
        return torch.cat(self.images) if self.images else torch.zeros(0)

    def load(self, stored: torch.Tensor) -> None:
        """Restore :meth:`state`."""
        self.images = [stored[i : i + 1].clone() for i in range(stored.shape[0])]


def load_image(
    path: Path, load_size: int, crop_size: int, mirror: bool, generator: torch.Generator
) -> torch.Tensor:
    """Resize (shorter side, bicubic), random crop, optional mirror, normalise to [-1, 1]."""
    with Image.open(path) as raw:
        image = raw.convert("RGB")
    width, height = image.size
    scale = load_size / min(width, height)
    size = (max(crop_size, round(width * scale)), max(crop_size, round(height * scale)))
    image = image.resize(size, Image.Resampling.BICUBIC)
    top = int(torch.randint(size[1] - crop_size + 1, (), generator=generator))
    left = int(torch.randint(size[0] - crop_size + 1, (), generator=generator))
    array = np.asarray(image, dtype=np.float32)[top : top + crop_size, left : left + crop_size]
    tensor = torch.from_numpy(array.copy()).permute(2, 0, 1) / 255.0
    if mirror:
        tensor = tensor.flip(-1)
    return ((tensor - 0.5) / 0.5).unsqueeze(0)


def domain_images(ctx: TrainContext, model: DisamModel) -> list[list[Path]]:
    """Training images per model domain (label: ``domain``, else ``condition``)."""
    records = [*ctx.train_split.database, *ctx.train_split.queries]
    per_domain: list[list[Path]] = [[] for _ in model.domains]
    for record in records:
        label = record.domain if record.domain is not None else record.condition
        if label is None:
            raise ConfigError(
                f"Training image {record.path} has neither a domain nor a condition; DISAM "
                "needs domain-labelled images (a dataset that provides domains or conditions)."
            )
        per_domain[model.domain_index(label)].append(record.path)
    empty = [model.domains[i] for i, images in enumerate(per_domain) if not images]
    if empty:
        have = sorted({str(r.domain or r.condition) for r in records})
        raise ConfigError(
            f"{ctx.train_split.name} has {len(have)} domains ({', '.join(have)}) but the DISAM "
            f"model has {len(model.domains)} ({', '.join(model.domains)}); no image of "
            f"{', '.join(empty)}. Set model.n_domains and model.domains to the dataset's."
        )
    return [sorted(images) for images in per_domain]
