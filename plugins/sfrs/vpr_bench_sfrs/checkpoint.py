"""Loading OpenIBL's SFRS model-zoo checkpoint (methods.md Part A, 8.1).

SFRS trains the plain NetVLAD model, so its files have exactly the keys of NetVLAD's and SARE's
(OpenIBL ``EmbedRegionNet`` has no weights of its own); only SFRS's training script adds a
``generation`` entry to the checkpoint (``examples/netvlad_img_sfrs.py:219-224``). The loader
uses that entry to refuse another method's ``model_best.pth.tar`` given as SFRS's, then loads
strictly with the NetVLAD plugin's OpenIBL loader.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from vpr_bench.errors import DataError
from vpr_bench.weights import safe_load
from vpr_bench_netvlad.checkpoint import load_openibl_weights
from vpr_bench_netvlad.model import NetVLADModel

if TYPE_CHECKING:
    from vpr_bench.weights import PcaWhitening

__all__ = ["load_sfrs_weights"]


def load_sfrs_weights(path: str | os.PathLike[str], model: torch.nn.Module) -> PcaWhitening | None:
    """``Checkpoint.load`` of SFRS's OpenIBL files: refuse a non-SFRS training checkpoint.

    A training checkpoint (``{"state_dict", "epoch", "best_recall5", ...}``) must carry the
    ``generation`` entry SFRS's script writes; a plain state dict (the torch-hub release) has
    no metadata and is accepted as it is. Everything else is
    :func:`vpr_bench_netvlad.checkpoint.load_openibl_weights` (the file is read a second time
    there; a model-zoo checkpoint is about 60 MB).

    Args:
        path: SFRS's ``model_best.pth.tar`` (or any OpenIBL file of the SFRS model).
        model: The VGG16 ``netvlad`` model built with the checkpoint's overrides.

    Returns:
        The file's PCA-whitening when it has a ``pca_layer`` (hub release), else None.

    Raises:
        DataError: The file is missing or unreadable, is a training checkpoint without a
            ``generation`` entry, or does not fit the model (see the NetVLAD loader).
    """
    file = Path(path)
    if not isinstance(model, NetVLADModel):
        return load_openibl_weights(file, model)  # refuses any other model, with its message
    payload = safe_load(file)
    if isinstance(payload, dict) and "state_dict" in payload and "generation" not in payload:
        raise DataError(
            f"Checkpoint {file} has no 'generation' entry: it looks like a non-SFRS OpenIBL "
            "checkpoint (NetVLAD's and SARE's model_best.pth.tar have the same keys); use the "
            "SFRS model_best.pth.tar of OpenIBL's model zoo (--checkpoint openibl-sfrs), or run "
            "this file with the method that trained it."
        )
    del payload
    return load_openibl_weights(file, model)
