"""Loading the authors' released ``model_best.pth.tar`` (methods.md Methods B, C; the issue's
"Released weights").

``weight_image_retrieval.tar.gz`` holds one folder per trained model under ``pretrained/``,
each with a ``model_best.pth.tar`` = ``{epoch, state_dict, recalls (numpy scalars),
best_score, optimizer, parallel, deatt_category_list}``. The state dict's keys are
``encoder.N.*`` (the VGG16 trunk), ``deattention.*``, ``senet_attention.fc.*`` and
``pool.*`` (NetVLAD); a DataParallel run has ``.module.`` after ``encoder`` and ``pool``, and
older runs spell the de-attention blocks ``crm`` instead of ``crn``. The loader takes the
archive (it picks the model's folder from the model's options) or the file itself, reads it
with the one safe loader (``weights_only``; numpy scalars allow-listed), maps the keys and
loads strictly (one-line key report on any mismatch).
"""

from __future__ import annotations

import io
import logging
import os
import re
import tarfile
from pathlib import Path
from typing import Any

import torch

from vpr_bench.errors import DataError
from vpr_bench.weights import compare_keys, safe_load

__all__ = ["ARCHIVE_RUNS", "load_deattention_weights", "map_keys", "read_checkpoint"]

log = logging.getLogger(__name__)

_PREFIX = "pretrained/trained_pitts30k_vgg16_netvladpooling_"
ARCHIVE_RUNS = {
    "deatt-stml-pitts30k": f"{_PREFIX}sTML1.4_deatt0.1_reclustering_senet",
    "stml-pitts30k": f"{_PREFIX}sTML1.4_m0.1",
}
"""The archive folder of each released tag."""


def map_keys(state: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The original's state-dict keys in this model's layout.

    ``encoder[.module].N.*`` -> ``trunk.N.*``, ``pool[.module].*`` -> ``net_vlad.*``,
    ``deattention.crm_*`` -> ``deattention.crn_*``; ``deattention.*`` and
    ``senet_attention.fc.*`` are kept. A leading ``module.`` (a wrapped model) is dropped.
    """
    mapped: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        new = key.removeprefix("module.")
        new = re.sub(r"^encoder\.(module\.)?", "trunk.", new)
        new = re.sub(r"^pool\.(module\.)?", "net_vlad.", new)
        new = re.sub(r"^deattention\.(module\.)?crm_", "deattention.crn_", new)
        new = re.sub(r"^deattention\.module\.", "deattention.", new)
        mapped[new] = value
    return mapped


def _archive_member(archive: Path, run: str) -> bytes:
    wanted = f"{run}/model_best.pth.tar"
    try:
        with tarfile.open(archive, "r:*") as tar:
            names = [m.name for m in tar.getmembers() if m.isfile()]
            match = next((n for n in names if n.lstrip("./").endswith(wanted)), None)
            if match is None:
                found = [n for n in names if n.endswith("model_best.pth.tar")]
                raise DataError(
                    f"{archive} has no {wanted} (model_best files in it: "
                    f"{', '.join(found) or 'none'}); pass the matching model_best.pth.tar, or "
                    "build the model with the options of the run you want."
                )
            handle = tar.extractfile(match)
            if handle is None:
                raise DataError(f"{archive}: {match} cannot be read.")
            return handle.read()
    except tarfile.TarError as exc:
        raise DataError(f"{archive} is not a readable tar archive ({exc}).") from exc


def read_checkpoint(path: Path, run: str) -> dict[str, Any]:
    """The checkpoint dict of ``model_best.pth.tar`` or of ``run`` inside the release archive.

    Raises:
        DataError: Missing, unreadable, unsafe or not a training checkpoint with a
            ``state_dict`` (one line each).
    """
    if path.is_file() and tarfile.is_tarfile(path):
        payload = safe_load(io.BytesIO(_archive_member(path, run)), name=f"{path}:{run}")
    else:
        payload = safe_load(path)
    if not isinstance(payload, dict) or not isinstance(payload.get("state_dict"), dict):
        keys = sorted(payload) if isinstance(payload, dict) else type(payload).__name__
        raise DataError(
            f"{path} is not a de-attention training checkpoint: expected a dict with "
            f"'state_dict' (model_best.pth.tar), found {keys}."
        )
    return payload


def _run_of(model: Any) -> str:
    if getattr(model, "deattention", None) is not None:
        return ARCHIVE_RUNS["deatt-stml-pitts30k"]
    return ARCHIVE_RUNS["stml-pitts30k"]


def load_deattention_weights(path: str | os.PathLike[str], model: torch.nn.Module) -> None:
    """``MethodSpec.weights_loader`` / ``Checkpoint.load``: load a released checkpoint strictly.

    Args:
        path: ``weight_image_retrieval.tar.gz`` or a ``model_best.pth.tar`` from it.
        model: The ``deattention-netvlad`` model built with the checkpoint's options (VGG16,
            64 clusters; de-attention and SE on for ``deatt-stml-pitts30k``, off for
            ``stml-pitts30k``).

    Returns:
        None: the released models have no PCA.

    Raises:
        DataError: The file cannot be read, or its keys or shapes do not fit the model (the
            strict key report names them and the options that would fit).
    """
    file = Path(path)
    payload = read_checkpoint(file, _run_of(model))
    state = map_keys(payload["state_dict"])
    report = compare_keys(model.state_dict(), state)
    if not report.ok:
        raise report.error(
            file,
            "deattention-netvlad",
            hint="Build the model with backbone=vgg16, num_clusters=64 and deattention/se as "
            "the run was trained (deatt-stml-pitts30k: both on; stml-pitts30k: both off).",
        )
    model.load_state_dict(state)
    categories = payload.get("deatt_category_list")
    log.info(
        "Loaded %s (epoch %s, best score %s, categories %s).",
        file,
        payload.get("epoch"),
        payload.get("best_score"),
        categories,
    )
