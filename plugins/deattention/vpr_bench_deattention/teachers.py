"""Mask teachers (training only) and the per-image mask cache (methods.md Methods B, C.1).

A teacher turns a training image into a 0/1 keep mask at image resolution; the target of the
mask loss is that mask resized to the feature-map size with bicubic interpolation
(``align_corners=True``, unclamped, so values can over- or undershoot [0, 1]; DEATT
tasks/common.py:141-142). Teachers:

* ``synthcity``: the renderer's class map of each image (``vpr-bench data prepare synthcity
  --labels``); occluders (cars, pedestrians) are human + vehicle.
* ``folder``: precomputed class maps, ``<trainer.teacher_folder>/<image stem>.png`` holding
  Cityscapes train ids (0-18; other values keep).
* ``vainf-deeplabv3plus``: VainF's DeepLabV3+ / MobileNetV2 Cityscapes model
  (``trainer.teacher_weights``, weights under ``model_state``; :mod:`.deeplab`), run in eval
  mode on the same ImageNet-normalised training image, argmax over the 19 train ids.

The original silently ran a randomly initialised segmentation head when its checkpoint was
missing (methods.md C.7 item 7); here a de-attention run without a teacher is refused in one
line naming the teachers. Masks are fixed per image, so they are cached at map size under
``sha256(teacher identity, categories, image bytes[, map file bytes], map size)``.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

from vpr_bench.errors import ConfigError, DataError
from vpr_bench_deattention.labels import keep_table

__all__ = [
    "TEACHERS",
    "FolderTeacher",
    "MaskCache",
    "SynthCityTeacher",
    "Teacher",
    "VainFTeacher",
    "build_teacher",
    "mask_target",
    "no_teacher_message",
]

TEACHERS = ("synthcity", "folder", "vainf-deeplabv3plus")


def no_teacher_message(context: str) -> str:
    """The one-line refusal of a de-attention run without a mask source."""
    return (
        f"{context}: the de-attention mask loss needs a mask teacher and none is set; set "
        "trainer.teacher to synthcity (renderer class maps: 'vpr-bench data prepare synthcity "
        "--labels'), folder (trainer.teacher_folder with precomputed Cityscapes class maps) or "
        "vainf-deeplabv3plus (trainer.teacher_weights), or turn the mask off with "
        "model.deattention=false."
    )


class Teacher(Protocol):
    """What the trainer needs of a teacher."""

    identity: str
    """Identifies the teacher and its categories (part of every cache key)."""

    def source_digest(self, image: Path) -> str:
        """Digest of per-image teacher input other than the image (a map file), else ``""``."""

    def keep(self, image: Path, pixels: torch.Tensor | None) -> torch.Tensor:
        """The ``[H, W]`` float32 0/1 keep mask of one image (``pixels``: preprocessed
        ``[3, H, W]``, for teachers that look at the image)."""


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class SynthCityTeacher:
    """Keep masks from the synthetic city's renderer class maps.

    Args:
        categories: The de-attended categories.
    """

    def __init__(self, categories: tuple[str, ...]) -> None:
        self.table = keep_table("synthcity", categories)
        self.identity = hashlib.sha256(
            f"synthcity-renderer-labels:{','.join(sorted(categories))}".encode()
        ).hexdigest()

    def source_digest(self, image: Path) -> str:
        """The class map follows from the image (same render), so nothing extra."""
        return ""

    def keep(self, image: Path, pixels: torch.Tensor | None) -> torch.Tensor:
        """Look the image's class map up in the keep table."""
        from vpr_bench.data import read_synthcity_class_map

        return torch.from_numpy(self.table[read_synthcity_class_map(image)])

    def check(self, image: Path) -> None:
        """Fail early (one line, how to generate them) when the class maps are missing."""
        from vpr_bench.data import read_synthcity_class_map

        read_synthcity_class_map(image)


class FolderTeacher:
    """Keep masks from precomputed Cityscapes class maps ``<folder>/<image stem>.png``.

    Args:
        folder: The folder of class maps.
        categories: The de-attended categories.

    Raises:
        ConfigError: The folder does not exist.
    """

    def __init__(self, folder: Path, categories: tuple[str, ...]) -> None:
        if not folder.is_dir():
            raise ConfigError(
                f"trainer.teacher_folder {folder} is not a folder; point it at the precomputed "
                "class maps (<image stem>.png, Cityscapes train ids)."
            )
        self.folder = folder
        self.table = keep_table("cityscapes", categories)
        self.identity = hashlib.sha256(
            f"folder-cityscapes:{','.join(sorted(categories))}".encode()
        ).hexdigest()

    def map_path(self, image: Path) -> Path:
        """Where the class map of ``image`` is expected."""
        return self.folder / f"{image.stem}.png"

    def source_digest(self, image: Path) -> str:
        """The map file's sha256 (a replaced map invalidates the cached mask)."""
        return _sha256_file(self._existing(image))

    def _existing(self, image: Path) -> Path:
        path = self.map_path(image)
        if not path.is_file():
            raise DataError(
                f"No class map {path} for training image {image.name}; the folder teacher "
                "needs one <image stem>.png (Cityscapes train ids) per training image."
            )
        return path

    def keep(self, image: Path, pixels: torch.Tensor | None) -> torch.Tensor:
        """Look the image's precomputed class map up in the keep table."""
        from PIL import Image

        with Image.open(self._existing(image)) as handle:
            labels = np.asarray(handle.convert("L"), dtype=np.uint8)
        return torch.from_numpy(self.table[labels])

    def check(self, image: Path) -> None:
        """Fail early when the first image has no map."""
        self._existing(image)


class VainFTeacher:
    """Keep masks from VainF's DeepLabV3+ / MobileNetV2 Cityscapes model.

    Args:
        weights: ``best_deeplabv3plus_mobilenet_cityscapes_os16.pth`` (``{"model_state": ...}``).
        categories: The de-attended categories.
        device: Where the network runs (bf16 autocast on CUDA; argmax and masks in fp32).

    Raises:
        DataError: Missing/unsafe file, no ``model_state`` (its keys are listed), or weights
            that do not fit the architecture (strict key report).
    """

    needs_pixels = True

    def __init__(
        self, weights: Path, categories: tuple[str, ...], device: torch.device | str = "cpu"
    ) -> None:
        from vpr_bench.weights import compare_keys, safe_load
        from vpr_bench_deattention.deeplab import build_deeplabv3plus_mobilenet

        payload = safe_load(weights)
        state = payload.get("model_state") if isinstance(payload, dict) else None
        if not isinstance(state, dict):
            keys = ", ".join(map(str, sorted(payload))) if isinstance(payload, dict) else None
            raise DataError(
                f"trainer.teacher_weights {weights} is not a VainF DeepLabV3+ checkpoint: "
                f"expected a dict with 'model_state', found "
                f"{f'keys {keys}' if keys is not None else type(payload).__name__}; use "
                "best_deeplabv3plus_mobilenet_cityscapes_os16.pth of VainF/DeepLabV3Plus-Pytorch."
            )
        state = {str(k).removeprefix("module."): v for k, v in state.items()}
        self.net = build_deeplabv3plus_mobilenet()
        report = compare_keys(self.net.state_dict(), state)
        if not report.ok:
            raise report.error(
                weights,
                "VainF DeepLabV3+ MobileNetV2 (19 classes, output stride 16)",
                hint="Use the MobileNetV2 Cityscapes checkpoint (os16), not another backbone.",
            )
        self.net.load_state_dict(state)
        self.device = torch.device(device)
        self.net.to(self.device).eval().requires_grad_(False)
        self.table = torch.from_numpy(keep_table("cityscapes", categories))
        self.identity = hashlib.sha256(
            f"vainf:{_sha256_file(weights)}:{','.join(sorted(categories))}".encode()
        ).hexdigest()

    def source_digest(self, image: Path) -> str:
        """The mask follows from the image and the weights (in the identity)."""
        return ""

    @torch.no_grad()
    def keep(self, image: Path, pixels: torch.Tensor | None) -> torch.Tensor:
        """Segment the preprocessed image, argmax, look the classes up in the keep table."""
        if pixels is None:
            raise DataError(f"vainf-deeplabv3plus teacher: no pixels given for {image}.")
        x = pixels[None].to(self.device)
        if self.device.type == "cuda":
            with torch.autocast("cuda", dtype=torch.bfloat16):
                logits = self.net(x)
        else:
            logits = self.net(x)
        classes = logits.float().argmax(dim=1)[0].cpu()
        return self.table[classes]

    def check(self, image: Path) -> None:
        """Nothing to check per image (the weights were checked when loading)."""


def build_teacher(
    kind: str,
    categories: tuple[str, ...],
    folder: str = "",
    weights: str = "",
    device: torch.device | str = "cpu",
) -> SynthCityTeacher | FolderTeacher | VainFTeacher:
    """The teacher named by ``trainer.teacher``.

    Raises:
        ConfigError: No or an unknown teacher, or its input is missing (one line each).
    """
    if not kind:
        raise ConfigError(no_teacher_message("deattention-mining"))
    if kind == "synthcity":
        return SynthCityTeacher(categories)
    if kind == "folder":
        if not folder:
            raise ConfigError(
                "trainer.teacher = folder needs trainer.teacher_folder, the folder of "
                "precomputed class maps (<image stem>.png, Cityscapes train ids)."
            )
        return FolderTeacher(Path(folder).expanduser(), categories)
    if kind == "vainf-deeplabv3plus":
        if not weights:
            raise ConfigError(
                "trainer.teacher = vainf-deeplabv3plus needs trainer.teacher_weights, VainF's "
                "best_deeplabv3plus_mobilenet_cityscapes_os16.pth (the authors' "
                "weight_semantic_guidance.tar.gz, https://drive.google.com/file/d/"
                "10d0hykoqynYZZU9SDJXyKihQ0-TxhWMT)."
            )
        return VainFTeacher(Path(weights).expanduser(), categories, device)
    raise ConfigError(
        f"trainer.teacher = {kind!r} is unknown; choose one of: {', '.join(TEACHERS)}."
    )


def mask_target(keep: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``M_gt``: the ``[H, W]`` keep mask resized to ``size`` (bicubic, align_corners, unclamped).

    Returns:
        ``[1, h, w]`` float32.
    """
    resized = F.interpolate(keep.float()[None, None], size=size, mode="bicubic", align_corners=True)
    return resized[0]


class MaskCache:
    """Masks at map size on disk, one ``.npy`` per key, written atomically.

    Args:
        folder: The cache folder (created on first write).
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(identity: str, image_digest: str, source_digest: str, size: tuple[int, int]) -> str:
        """The cache key of one image's mask."""
        text = f"{identity}:{image_digest}:{source_digest}:{size[0]}x{size[1]}"
        return hashlib.sha256(text.encode()).hexdigest()

    def get(self, key: str) -> torch.Tensor | None:
        """The cached ``[1, h, w]`` mask, or None."""
        path = self.folder / f"{key}.npy"
        try:
            data = np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            self.misses += 1
            return None
        self.hits += 1
        return torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32))

    def put(self, key: str, mask: torch.Tensor) -> None:
        """Store a mask (temporary file + ``os.replace``: a reader never sees half a file)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{key}.", suffix=".tmp", dir=self.folder)
        try:
            with os.fdopen(fd, "wb") as handle:
                np.save(handle, mask.detach().cpu().numpy().astype(np.float32))
            os.replace(tmp, self.folder / f"{key}.npy")
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def image_digest(path: Path) -> str:
    """sha256 of an image file's bytes."""
    return _sha256_file(path)
