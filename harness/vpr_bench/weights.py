"""Model weights: sha256 of weight files and safe loading into a model.

Checkpoints are read with ``torch.load(..., weights_only=True)`` only: a file that needs
arbitrary pickled objects is refused with a message, never executed.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vpr_bench.errors import DataError

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "extract_state_dict",
    "load_state_file",
    "load_weights",
    "sha256_file",
    "state_dict_digest",
]

log = logging.getLogger(__name__)

_CHUNK = 1 << 20
_NESTED_KEYS = ("state_dict", "model_state_dict", "model", "net")
_PREFIXES = ("module.", "_orig_mod.")


def sha256_file(path: Path) -> str:
    """The sha256 hex digest of a file, read in 1 MiB chunks.

    Raises:
        DataError: The file does not exist or cannot be read.
    """
    digest = hashlib.sha256()
    try:
        with Path(path).open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    except FileNotFoundError:
        raise DataError(f"Weights file {path} does not exist; check the --weights path.") from None
    except OSError as exc:
        raise DataError(f"Cannot read weights file {path}: {exc}.") from exc
    return digest.hexdigest()


def state_dict_digest(model: nn.Module) -> str:
    """A sha256 over a model's state dict (names, dtypes, shapes and values).

    Used to key caches of models that have no weights file (e.g. seeded untrained models).
    """
    import torch

    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        value = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{value.dtype}|{tuple(value.shape)}|".encode())
        digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def extract_state_dict(payload: object, path: Path) -> dict[str, torch.Tensor]:
    """Find the tensor mapping inside a loaded checkpoint.

    Accepts a plain state dict, or a dict holding one under ``state_dict``,
    ``model_state_dict``, ``model`` or ``net`` (the common trainer layouts). ``module.`` (DDP)
    and ``_orig_mod.`` (torch.compile) prefixes are stripped.

    Raises:
        DataError: No mapping of names to tensors was found.
    """
    import torch

    candidate: object = payload
    if isinstance(candidate, Mapping):
        for key in _NESTED_KEYS:
            inner = candidate.get(key)
            if isinstance(inner, Mapping) and inner:
                candidate = inner
                break
    if not isinstance(candidate, Mapping) or not candidate:
        raise DataError(
            f"{path}: no state dict found (expected a mapping of parameter names to tensors, "
            f"or a dict with one under {', '.join(_NESTED_KEYS)})."
        )
    tensors: dict[str, torch.Tensor] = {}
    for key, value in candidate.items():
        if not isinstance(value, torch.Tensor):
            continue
        name = str(key)
        for prefix in _PREFIXES:
            if name.startswith(prefix):
                name = name[len(prefix) :]
        tensors[name] = value
    if not tensors:
        raise DataError(f"{path}: the checkpoint holds no tensors.")
    return tensors


def load_weights(model: nn.Module, path: Path, *, strict: bool = True) -> str:
    """Load a checkpoint file into ``model`` (on CPU first) and return the file's sha256.

    Args:
        model: The freshly built model.
        path: A ``torch.save`` file of a state dict (see :func:`extract_state_dict`).
        strict: Require the file's keys to match the model's exactly.

    Returns:
        The sha256 hex digest of the file, for the record.

    Raises:
        DataError: The file is missing, is not a weights-only checkpoint, or does not fit
            the model (the message lists the first missing and unexpected keys).
    """
    digest = sha256_file(Path(path))
    load_state_file(model, Path(path), strict=strict)
    return digest


def load_state_file(model: nn.Module, path: Path, *, strict: bool = True) -> None:
    """:func:`load_weights` without hashing the file (for callers that already hashed it).

    Raises:
        DataError: As :func:`load_weights`.
    """
    import pickle

    import torch

    path = Path(path)
    try:
        payload: Any = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise DataError(
            f"{path}: refused to load. It is not a weights-only checkpoint (it pickles "
            f"objects other than tensors and plain containers): {exc}. Re-save it with "
            "torch.save(model.state_dict(), path)."
        ) from exc
    except (RuntimeError, EOFError, OSError) as exc:
        raise DataError(f"{path}: not a readable torch checkpoint ({exc}).") from exc
    state = extract_state_dict(payload, path)
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches
        raise DataError(
            f"{path}: the weights do not fit model {type(model).__name__} ({exc}). Check that "
            "the file belongs to this model and its config."
        ) from exc
    missing, unexpected = list(result.missing_keys), list(result.unexpected_keys)
    if strict and (missing or unexpected):
        raise DataError(
            f"{path}: the weights do not fit model {type(model).__name__}: "
            f"{len(missing)} missing key(s) {missing[:5]}, {len(unexpected)} unexpected key(s) "
            f"{unexpected[:5]}. Check that the file belongs to this model and its config."
        )
    if missing or unexpected:
        log.warning(
            "%s: %d missing and %d unexpected keys were ignored",
            path,
            len(missing),
            len(unexpected),
        )
