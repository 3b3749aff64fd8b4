"""Read object ``.npy`` files without running code: a restricted unpickler.

VPR-Bench's ``ground_truth_new.npy`` is an object array of integer lists, so it is a pickle,
and ``np.load(allow_pickle=True)`` would run whatever callable a crafted file names. This
reader parses the ``.npy`` header itself and unpickles the payload with an unpickler that
resolves only the globals such a file needs (numpy's array reconstruction and dtypes);
lists, tuples, ints, strings and None need no global. Anything else is refused.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from vpr_bench.errors import DataError

__all__ = ["load_object_npy"]

_ALLOWED_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }
)
"""(module, name) pairs an object array of integer lists pickles (Python 2 or 3 numpy)."""


class _RefusedGlobal(pickle.UnpicklingError):
    """The pickle named a global outside the allowed set."""


class _ArrayUnpickler(pickle.Unpickler):
    """An unpickler that builds numpy arrays of plain Python values and nothing else."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise _RefusedGlobal(f"{module}.{name}")
        return getattr(np, name) if module == "numpy" else _reconstruct()


def _reconstruct() -> Any:
    """The array-reconstruction helper of numpy, wherever this numpy keeps it."""
    import importlib

    for module in ("numpy._core.multiarray", "numpy.core.multiarray"):
        try:
            return importlib.import_module(module)._reconstruct
        except ImportError:  # pragma: no cover - numpy < 2 has only numpy.core
            continue
    raise pickle.UnpicklingError("this numpy has no multiarray._reconstruct")  # pragma: no cover


def load_object_npy(path: Path) -> np.ndarray:
    """Load a ``.npy`` file; an object array is unpickled with only array globals admitted.

    Args:
        path: The ``.npy`` file.

    Returns:
        The array. Plain (non-object) arrays are read with ``allow_pickle=False``.

    Raises:
        DataError: The file is not a readable ``.npy``, or its pickle names anything but numpy
            arrays, dtypes and plain Python values (a file that would run code on load).
    """
    try:
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            if version == (1, 0):
                _shape, _fortran, dtype = np.lib.format.read_array_header_1_0(handle)
            elif version == (2, 0):
                _shape, _fortran, dtype = np.lib.format.read_array_header_2_0(handle)
            else:
                raise ValueError(f".npy format version {version} is not 1.0 or 2.0")
            if not dtype.hasobject:
                plain: np.ndarray = np.load(path, allow_pickle=False)
                return plain
            payload = handle.read()
        # encoding="latin1" reads the Python 2 strings numpy's own pickles carry byte-exactly.
        array = _ArrayUnpickler(io.BytesIO(payload), encoding="latin1").load()
    except _RefusedGlobal as exc:
        raise DataError(
            f"{path}: refused to load: its pickle calls {exc}, which a ground-truth file never "
            "holds (only numpy arrays of integer lists); the file may run code, so replace it "
            "with the dataset's original ground_truth_new.npy."
        ) from exc
    except Exception as exc:  # numpy raises ValueError/OSError, pickle UnpicklingError/EOFError
        raise DataError(
            f"Cannot read {path} as a .npy file ({type(exc).__name__}: {exc}); it is damaged."
        ) from exc
    if not isinstance(array, np.ndarray):
        raise DataError(
            f"{path}: expected a numpy array, got {type(array).__name__}; replace it with the "
            "dataset's original ground_truth_new.npy."
        )
    return array
