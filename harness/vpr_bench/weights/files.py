"""Weight files on disk: the one safe loader, sha256 digests, state-dict extraction.

Every weight or checkpoint file in vpr-bench is read by :func:`safe_load`, which calls
``torch.load(..., map_location="cpu", weights_only=True)``: tensors, numbers, strings, plain
containers and, besides those, exactly the numpy scalar and dtype globals (OpenIBL stores
``best_recall5`` as a ``numpy.float64``). A file that pickles anything else is refused before
any of its code runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from vpr_bench.errors import DataError

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "extract_state_dict",
    "load_state_file",
    "numpy_safe_globals",
    "safe_load",
    "sha256_file",
    "state_dict_digest",
    "strip_prefixes",
]

log = logging.getLogger(__name__)

_CHUNK = 1 << 20
_NESTED_KEYS = ("state_dict", "model_state_dict", "model", "net")
_PREFIXES = ("module.", "_orig_mod.")
_SCALAR_PATHS = ("numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar")
_NUMPY_TYPES = "?bhilqBHILQefdgFDG"  # bool, signed/unsigned ints, floats, complex
_GLOBAL_RE = re.compile(r"GLOBAL ([\w.]+)")
_BOILERPLATE = ("Weights only load failed", "Please file an issue", "Check the documentation")


def sha256_file(path: str | os.PathLike[str]) -> str:
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


def numpy_safe_globals() -> list[Any]:
    """The numpy globals :func:`safe_load` admits: scalar reconstruction and numeric dtypes.

    ``numpy.dtype``, the concrete dtype classes of booleans, integers, floats and complex
    numbers (``numpy.dtypes.Float64DType`` ... in numpy 2, ``numpy.dtype[float64]`` ... in
    numpy 1), and ``multiarray.scalar`` under both its numpy 1 (``numpy.core``) and numpy 2
    (``numpy._core``) paths, so a file written under either numpy loads under the other.
    Nothing else: no arrays of objects, no ``_reconstruct``, no user classes.
    """
    import numpy as np

    try:
        from numpy._core.multiarray import scalar
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import scalar  # type: ignore[no-redef]
    dtype_classes = {type(np.dtype(code)) for code in _NUMPY_TYPES}
    admitted: list[Any] = [np.dtype, *sorted(dtype_classes, key=lambda c: c.__name__)]
    admitted += [(scalar, path) for path in _SCALAR_PATHS]
    return admitted


@contextlib.contextmanager
def _admit_numpy() -> Iterator[None]:
    """Admit :func:`numpy_safe_globals` for the duration of one load (torch >= 2.5)."""
    import torch

    safe_globals = getattr(torch.serialization, "safe_globals", None)
    if safe_globals is None:  # torch < 2.5: numpy scalars stay refused
        yield
        return
    admitted = numpy_safe_globals()
    if _torch_version() < (2, 6):  # no ("path", object) aliases yet: the installed name only
        admitted = [g for g in admitted if not isinstance(g, tuple)] + [admitted[-1][0]]
    with safe_globals(admitted):
        yield


def _torch_version() -> tuple[int, int]:
    import torch

    match = re.match(r"(\d+)\.(\d+)", torch.__version__)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def safe_load(source: str | os.PathLike[str] | IO[bytes], *, name: str | None = None) -> object:
    """Read a ``torch.save`` file on the CPU without running any code it might carry.

    Args:
        source: A path, or an open binary file (e.g. an ``io.BytesIO``).
        name: What to call the source in messages (default: the path, or ``<buffer>``).

    Returns:
        The unpickled object: tensors, numbers, strings, numpy scalars and plain containers.

    Raises:
        DataError: The file is missing, is not a torch file, or pickles something else (a
            class, a function); the message names the file, the refused global and the fix.
    """
    import pickle

    import torch

    is_path = isinstance(source, (str, os.PathLike))
    label = name or (str(source) if is_path else "<buffer>")
    if is_path and not Path(source).is_file():  # type: ignore[arg-type]
        if Path(source).is_dir():  # type: ignore[arg-type]
            raise DataError(f"Weights file {label} is a folder; pass the weights file itself.")
        raise DataError(f"Weights file {label} does not exist; check the path.")
    head = _head(source) if is_path else None  # type: ignore[arg-type]
    if head is not None and not _looks_like_torch_file(head):
        start = f"it starts with {head[:8].hex(' ')}" if head else "it is empty"
        raise DataError(
            f"{label}: not a torch file ({start}: neither the zip archive torch.save writes "
            "nor a pickle); check the path, or download the file again."
        )
    try:
        with _admit_numpy(), warnings.catch_warnings():
            # A damaged file's first bytes read as an odd pickle protocol; the error says more.
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            return torch.load(source, map_location="cpu", weights_only=True)  # type: ignore[no-any-return]
    except pickle.UnpicklingError as exc:
        found = _GLOBAL_RE.search(str(exc))
        if found is None:
            raise DataError(
                f"{label}: not a readable torch file ({_detail(exc)}); expected a weights-only "
                "checkpoint written by torch.save. Check the path, or download the file again."
            ) from None
        raise DataError(
            f"{label}: refused to load: it pickles {found.group(1)}, and a weights-only file "
            "holds only tensors, numbers, strings, numpy scalars and plain containers. Re-save "
            "it from the code that wrote it with torch.save(model.state_dict(), path) (plain "
            "values in any metadata)."
        ) from None
    except Exception as exc:  # a damaged file fails anywhere in the unpickler (IndexError, ...)
        raise DataError(
            f"{label}: not a readable torch file ({_detail(exc)}); expected a weights-only "
            "checkpoint written by torch.save. Check the path, or download the file again."
        ) from exc


_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_PROTO = 0x80
_TAR_MAGIC_OFFSET = 257  # torch's oldest (tar) format: "ustar" at this offset


def _head(path: str | os.PathLike[str]) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read(_TAR_MAGIC_OFFSET + 5)
    except OSError:
        return None  # torch.load reports it


def _looks_like_torch_file(head: bytes) -> bool:
    """A zip archive (torch >= 1.6), a pickle with a protocol opcode (legacy) or a tar."""
    return (
        head.startswith(_ZIP_MAGIC)
        or (len(head) > 1 and head[0] == _PICKLE_PROTO)
        or head[_TAR_MAGIC_OFFSET:].startswith(b"ustar")
    )


def _detail(exc: BaseException) -> str:
    """The informative line of a torch load error (torch wraps it in paragraphs of advice)."""
    lines = [line.strip() for line in str(exc).splitlines()]
    useful = [line for line in lines if line and not line.startswith(_BOILERPLATE)]
    return useful[0] if useful else type(exc).__name__


def strip_prefixes(name: str) -> str:
    """Drop the ``module.`` (DDP) and ``_orig_mod.`` (torch.compile) prefixes of a key."""
    for prefix in _PREFIXES:
        if name.startswith(prefix):
            name = name[len(prefix) :]
    return name


def extract_state_dict(payload: object, path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
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
        if isinstance(value, torch.Tensor):
            tensors[strip_prefixes(str(key))] = value
    if not tensors:
        raise DataError(f"{path}: the checkpoint holds no tensors.")
    return tensors


def load_state_file(model: nn.Module, path: str | os.PathLike[str], *, strict: bool = True) -> None:
    """Load a vpr-bench state-dict file into ``model`` (on CPU first); nothing is hashed.

    Args:
        model: The freshly built model.
        path: A ``torch.save`` file of a state dict (see :func:`extract_state_dict`).
        strict: Require the file's keys and shapes to match the model's exactly; otherwise
            what fits is loaded and the rest is logged.

    Raises:
        DataError: The file is missing, is not a weights-only checkpoint, or does not fit the
            model (the message lists missing, unexpected and shape-mismatched keys).
    """
    from vpr_bench.weights.keys import compare_keys

    path = Path(path)
    state = extract_state_dict(safe_load(path), path)
    report = compare_keys(model.state_dict(), state)
    if strict and not report.ok:
        raise report.error(path, type(model).__name__)
    fitting = {k: v for k, v in state.items() if k not in report.mismatched_names}
    model.load_state_dict(fitting, strict=False)
    if not report.ok:
        log.warning("%s: %s were ignored", path, report.describe())
