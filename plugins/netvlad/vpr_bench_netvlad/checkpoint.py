"""Strict loading of OpenIBL checkpoints into :class:`NetVLADModel` (methods.md 8.1 and 8.2).

Two layouts are read:

* training checkpoints / model zoo ``model_best.pth.tar``: ``{"state_dict", "epoch",
  "best_recall5"[, "generation"]}`` saved from DistributedDataParallel, keys
  ``module.base_model.base.N.*`` and ``module.net_vlad.{centroids,conv.weight}``;
* the torch-hub release ``vgg16_netvlad.pth``: a plain state dict without the ``module.``
  prefix that also holds ``pca_layer.weight`` [P, K*D, 1, 1] and ``pca_layer.bias`` [P].

Unlike OpenIBL's ``copy_state_dict`` (which silently skips what does not fit), every tensor of
the file must be consumed and every tensor of the model provided, with equal shapes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from vpr_bench.errors import DataError
from vpr_bench.weights import compare_keys, safe_load
from vpr_bench_netvlad.model import NetVLADModel

if TYPE_CHECKING:
    from vpr_bench.weights import PcaWhitening

__all__ = [
    "LoadedCheckpoint",
    "load_openibl_checkpoint",
    "load_openibl_weights",
    "openibl_to_model_keys",
]

_KEY_MAP = (("base_model.base.", "trunk."), ("net_vlad.", "net_vlad."))
_PCA_KEYS = ("pca_layer.weight", "pca_layer.bias")


@dataclass
class LoadedCheckpoint:
    """What a checkpoint held besides the model weights.

    Attributes:
        pca_weight: ``[P, K*D]`` PCA-whitening projection (hub release), or None.
        pca_bias: ``[P]`` PCA bias (``-W mu``), or None.
        meta: Non-tensor entries (``epoch``, ``best_recall5``, ``generation``) and ``format``.
    """

    pca_weight: torch.Tensor | None = None
    pca_bias: torch.Tensor | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def openibl_to_model_keys(
    state: dict[str, torch.Tensor],
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], list[str]]:
    """Split an OpenIBL state dict into (model tensors by our names, PCA tensors, unmapped keys)."""
    mapped: dict[str, torch.Tensor] = {}
    pca: dict[str, torch.Tensor] = {}
    unmapped: list[str] = []
    for raw_key, tensor in state.items():
        key = raw_key.removeprefix("module.")
        if key in _PCA_KEYS:
            pca[key] = tensor
            continue
        for theirs, ours in _KEY_MAP:
            if key.startswith(theirs):
                mapped[ours + key[len(theirs) :]] = tensor
                break
        else:
            unmapped.append(raw_key)
    return mapped, pca, unmapped


def _read(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    if not path.is_file():
        raise DataError(f"Checkpoint {path} does not exist; download it or fix the path.")
    obj = safe_load(path)  # weights-only; admits OpenIBL's numpy-scalar best_recall5
    if not isinstance(obj, dict):
        raise DataError(f"Checkpoint {path} holds a {type(obj).__name__}, expected a dict.")
    if "state_dict" in obj:
        state, meta = obj["state_dict"], {k: v for k, v in obj.items() if k != "state_dict"}
        meta["format"] = "openibl-training"
    else:
        state, meta = obj, {"format": "openibl-hub"}
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise DataError(f"Checkpoint {path}: 'state_dict' must map names to tensors.")
    meta = {
        k: (
            v.item()
            if (isinstance(v, torch.Tensor) and v.numel() == 1) or isinstance(v, np.generic)
            else v
        )
        for k, v in meta.items()
    }
    return state, meta


def load_openibl_checkpoint(path: str | os.PathLike[str], model: NetVLADModel) -> LoadedCheckpoint:
    """Load an OpenIBL checkpoint into ``model`` strictly; return its PCA stage and metadata.

    Args:
        path: A ``.pth``/``.pth.tar`` file in either OpenIBL layout (see the module docstring).
        model: A VGG16 :class:`NetVLADModel` of matching K and D.

    Returns:
        The PCA weight ``[P, K*D]`` and bias ``[P]`` when the file has a ``pca_layer``, and the
        file's metadata.

    Raises:
        DataError: Unreadable file, or keys/shapes that do not match the model; the message lists
            missing keys, unexpected keys and shape mismatches.
    """
    file = Path(path)
    state, meta = _read(file)
    mapped, pca, unexpected = openibl_to_model_keys(state)
    report = compare_keys(model.state_dict(), mapped)
    missing = list(report.missing)
    unexpected += report.unexpected
    mismatched = [str(m) for m in report.mismatched]
    pca_weight, pca_bias = pca.get("pca_layer.weight"), pca.get("pca_layer.bias")
    if (pca_weight is None) != (pca_bias is None):
        missing.append("pca_layer.bias" if pca_bias is None else "pca_layer.weight")
    elif pca_weight is not None and pca_bias is not None:
        ok = pca_weight.ndim == 2 or (pca_weight.ndim == 4 and pca_weight.shape[2:] == (1, 1))
        if (
            not ok
            or pca_weight.shape[1] != model.descriptor_dim
            or pca_bias.shape != (pca_weight.shape[0],)
        ):
            mismatched.append(
                f"pca_layer: weight {tuple(pca_weight.shape)} and bias {tuple(pca_bias.shape)} "
                f"do not form a [P, {model.descriptor_dim}(, 1, 1)] / [P] projection"
            )
    if missing or unexpected or mismatched:
        parts = []
        if missing:
            parts.append(f"missing keys: {', '.join(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {', '.join(unexpected)}")
        if mismatched:
            parts.append(f"shape mismatches: {'; '.join(mismatched)}")
        raise DataError(
            f"Checkpoint {file} does not fit the netvlad model (backbone "
            f"{model.config.backbone}, K={model.net_vlad.num_clusters}, "
            f"D={model.local_dim}): " + " | ".join(parts) + ". OpenIBL checkpoints need "
            "backbone=vgg16, num_clusters=64, variant=openibl."
        )
    model.load_state_dict(mapped, strict=True)
    if pca_weight is not None and pca_bias is not None:
        return LoadedCheckpoint(
            pca_weight.reshape(pca_weight.shape[0], -1).clone(), pca_bias.clone(), meta
        )
    return LoadedCheckpoint(None, None, meta)


def load_openibl_weights(
    path: str | os.PathLike[str], model: torch.nn.Module
) -> PcaWhitening | None:
    """``Checkpoint.load`` for OpenIBL files: strict load, and the hub file's PCA if it has one.

    Args:
        path: An OpenIBL ``model_best.pth.tar`` or hub ``vgg16_netvlad.pth``.
        model: The :class:`NetVLADModel` built with the checkpoint's overrides.

    Returns:
        The hub release's ``pca_layer`` as a folded :class:`~vpr_bench.weights.PcaWhitening`
        (applied exactly as OpenIBL's 1x1 convolution), or None for a training checkpoint
        (its PCA is fitted separately, as OpenIBL does).

    Raises:
        DataError: See :func:`load_openibl_checkpoint`; also when ``model`` is not NetVLAD.
    """
    from vpr_bench.weights import PcaWhitening

    if not isinstance(model, NetVLADModel):
        raise DataError(
            f"OpenIBL checkpoint {path} loads into the netvlad model only, not a "
            f"{type(model).__name__}."
        )
    loaded = load_openibl_checkpoint(path, model)
    if loaded.pca_weight is None or loaded.pca_bias is None:
        return None
    return PcaWhitening.from_linear(loaded.pca_weight, loaded.pca_bias)
