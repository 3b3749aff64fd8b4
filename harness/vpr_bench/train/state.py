"""Resumable training state: a tensor-only state file plus a JSON sidecar, written atomically.

A training state is not a released checkpoint: besides the model it holds everything needed to
continue a run bit for bit. ``<name>.pt`` holds nested dicts of tensors, numbers and strings only
(model, optimiser, scheduler, grad scaler, every RNG state as tensors/ints, the loop position and
the mining cache) and is read with :func:`vpr_bench.weights.safe_load` (weights-only).
``<name>.json`` holds what a human or a tool wants without torch: config, method, epoch, step,
best metric. The ``model`` entry alone is a state dict, so ``--weights <run>/checkpoints/best.pt``
evaluates it.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vpr_bench.atomic import atomic_open, atomic_write_json
from vpr_bench.errors import DataError
from vpr_bench.weights.files import safe_load

__all__ = [
    "capture_rng_state",
    "load_train_state",
    "restore_rng_state",
    "save_train_state",
    "sidecar_path",
]


def sidecar_path(path: Path) -> Path:
    """The JSON metadata file beside checkpoint ``path`` (``last.pt`` -> ``last.json``)."""
    return Path(path).with_suffix(".json")


def capture_rng_state() -> dict[str, Any]:
    """Python, NumPy, torch CPU and CUDA RNG states as tensors and plain numbers."""
    py_version, py_state, py_gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state(legacy=True)  # type: ignore[misc]
    state: dict[str, Any] = {
        "python_version": int(py_version),
        "python_state": torch.tensor(py_state, dtype=torch.int64),
        "python_gauss": py_gauss,
        "numpy_name": str(np_name),
        "numpy_keys": torch.from_numpy(np.asarray(np_keys, dtype=np.int64)),
        "numpy_pos": int(np_pos),
        "numpy_has_gauss": int(np_has_gauss),
        "numpy_gauss": float(np_gauss),
        "torch_cpu": torch.get_rng_state(),
        "torch_cuda": [],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["torch_cuda"] = list(torch.cuda.get_rng_state_all())
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Restore the RNG states captured by :func:`capture_rng_state`."""
    py_state = tuple(int(v) for v in state["python_state"].tolist())
    random.setstate((int(state["python_version"]), py_state, state["python_gauss"]))
    np.random.set_state(
        (
            state["numpy_name"],
            state["numpy_keys"].numpy().astype(np.uint32),
            int(state["numpy_pos"]),
            int(state["numpy_has_gauss"]),
            float(state["numpy_gauss"]),
        )
    )
    torch.set_rng_state(state["torch_cpu"])
    cuda_states = state.get("torch_cuda") or []
    if cuda_states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda_states[: torch.cuda.device_count()])


def save_train_state(path: Path, state: dict[str, Any], meta: dict[str, Any]) -> Path:
    """Write ``state`` (tensors/numbers only) to ``path`` and ``meta`` to its JSON sidecar.

    Both writes are atomic (temp file, fsync, rename); the state file is written first, so a
    sidecar always describes a complete state file.

    Returns:
        ``path``.
    """
    path = Path(path)
    with atomic_open(path, "wb") as handle:
        torch.save(state, handle)
    atomic_write_json(sidecar_path(path), meta)
    return path


def load_train_state(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Load a training state (through :func:`~vpr_bench.weights.safe_load`) and its sidecar.

    Raises:
        DataError: The file is missing or is not a vpr-bench checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"No checkpoint at {path}. --resume expects a run directory holding "
            "checkpoints/last.pt (written every trainer.checkpoint_every_steps steps)."
        )
    try:
        state = safe_load(path)
    except DataError as exc:
        raise DataError(
            f"Cannot load checkpoint {path}: {exc} It is damaged or not a vpr-bench checkpoint; "
            "start a fresh run or resume from another run directory."
        ) from exc
    if not isinstance(state, dict):
        raise DataError(f"Checkpoint {path} does not hold a state dict.")
    meta: dict[str, Any] = {}
    sidecar = sidecar_path(path)
    if sidecar.is_file():
        try:
            meta = json.loads(sidecar.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise DataError(f"Checkpoint sidecar {sidecar} is not valid JSON: {exc}.") from exc
    return state, meta
