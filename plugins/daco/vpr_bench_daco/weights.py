"""DaCo's released weights: ``<data>_<method>_model.pth``, a plain ``f.*``/``g.*`` state dict.

main.py:171 saves ``model_q.state_dict()`` (no prefix, no wrapper; manifest_daco.json). The
HEAD code's head ends in 2048 (``g.3.weight [2048, 512]``); the ICMR 2021 code's in 128. Both
READMEs link the same files with different numbers, so the loader takes either width, rebuilds
g to fit (g is not part of the descriptor) and records which on the model (``model.head``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vpr_bench.errors import DataError
from vpr_bench.weights import compare_keys, safe_load

__all__ = ["load_daco_weights"]

log = logging.getLogger(__name__)


def load_daco_weights(path: str | Path, model: nn.Module) -> None:
    """Load a DaCo ``<data>_<method>_model.pth`` into a ``daco`` model, strictly.

    Returns None (the file carries no PCA), as a ``weights_loader`` does.

    Raises:
        DataError: The file is not a DaCo state dict (keys other than ``f.*``/``g.*``, no
            projection head) or does not fit the model's backbone.
    """
    path = Path(path)
    payload: Any = safe_load(path, name=f"DaCo weights {path}")
    if not isinstance(payload, dict) or not payload:
        raise DataError(
            f"{path} is not a DaCo state dict: expected a dict of f.*/g.* tensors "
            "(main.py saves model_q.state_dict())."
        )
    foreign = sorted(k for k in payload if not str(k).startswith(("f.", "g.")))
    if foreign or not all(isinstance(v, torch.Tensor) for v in payload.values()):
        shown = ", ".join(str(k) for k in foreign[:3]) or "non-tensor values"
        raise DataError(
            f"{path} is not a DaCo state dict: it has {shown} besides the f.* (trunk) and g.* "
            "(head) tensors of DaCo's <data>_<method>_model.pth."
        )
    head_in, head_out = payload.get("g.0.weight"), payload.get("g.3.weight")
    if head_in is None or head_out is None or head_in.ndim != 2 or head_out.ndim != 2:
        raise DataError(
            f"{path} is not a DaCo state dict: it has no projection head (g.0.weight, g.3.weight)."
        )
    first: torch.Tensor = head_in
    last: torch.Tensor = head_out
    hidden, width = int(first.shape[0]), int(last.shape[0])
    set_head = getattr(model, "set_head", None)
    if not callable(set_head):
        raise DataError(f"{path} is DaCo weights; load it into the daco model.")
    current = model.state_dict()
    if (
        current.get("g.0.weight", first).shape != first.shape
        or current.get("g.3.weight", last).shape != last.shape
    ):
        set_head(hidden, width)
    report = compare_keys(model.state_dict(), payload)
    if not report.ok:
        raise report.error(
            path,
            "daco",
            hint="DaCo's released weights need model.backbone=resnet50 (--set "
            "model.backbone=resnet50).",
        )
    model.load_state_dict(payload, strict=True)
    log.info(
        "%s: DaCo weights, %s projection head (%d -> %d -> %d)",
        path,
        getattr(model, "head", "?"),
        model.descriptor_dim,
        hidden,
        width,
    )
