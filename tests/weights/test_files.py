"""The one safe loader: numpy scalars load, anything else that a pickle could build is refused."""

from __future__ import annotations

import collections
import io
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from vpr_bench.errors import DataError
from vpr_bench.weights import numpy_safe_globals, safe_load


class _OrderedSub(collections.OrderedDict):  # type: ignore[type-arg]
    """A dict subclass: harmless here, but not a plain container, so it is refused."""


class _Arbitrary:
    def __init__(self) -> None:
        self.value = 3


class _RunsACommand:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def _openibl_like(path: Path, **save_kwargs: object) -> None:
    """What OpenIBL's training script writes: numpy scalars beside the state dict."""
    torch.save(
        {
            "state_dict": {"module.net_vlad.centroids": torch.ones(2, 3)},
            "epoch": np.int64(4),
            "best_recall5": np.float64(0.9512),
            "lr": np.float32(0.001),
        },
        path,
        **save_kwargs,  # type: ignore[arg-type]
    )


def test_openibl_metadata_with_numpy_scalars_loads(tmp_path: Path) -> None:
    path = tmp_path / "model_best.pth.tar"
    _openibl_like(path)
    loaded = safe_load(path)
    assert isinstance(loaded, dict)
    assert loaded["best_recall5"] == np.float64(0.9512) and loaded["epoch"] == 4
    assert isinstance(loaded["best_recall5"], np.float64) and isinstance(loaded["lr"], np.float32)
    torch.testing.assert_close(loaded["state_dict"]["module.net_vlad.centroids"], torch.ones(2, 3))


def test_numpy_1_scalar_path_loads_under_numpy_2(tmp_path: Path) -> None:
    # numpy 1.x pickles scalars as numpy.core.multiarray.scalar; numpy 2 as numpy._core....
    # Both names are admitted, whichever numpy is installed.
    path = tmp_path / "legacy.pth"
    _openibl_like(path, _use_new_zipfile_serialization=False)  # a plain pickle stream
    data = path.read_bytes()
    installed, other = b"numpy._core.multiarray", b"numpy.core.multiarray"
    if installed not in data:
        installed, other = other, installed
    assert installed in data
    path.write_bytes(data.replace(installed, other))
    loaded = safe_load(path)
    assert isinstance(loaded, dict) and loaded["best_recall5"] == 0.9512


def test_only_numpy_scalar_and_dtype_globals_are_admitted() -> None:
    for entry in numpy_safe_globals():
        obj, name = entry if isinstance(entry, tuple) else (entry, entry.__module__)
        assert name.startswith("numpy"), entry
        assert (
            obj is np.dtype
            or (isinstance(obj, type) and issubclass(obj, np.dtype))
            or (name.endswith("multiarray.scalar"))
        ), entry


@pytest.mark.parametrize(
    ("payload", "refused"),
    [(_OrderedSub(a=torch.ones(1)), "_OrderedSub"), ({"x": _Arbitrary()}, "_Arbitrary")],
    ids=["dict-subclass", "class"],
)
def test_other_globals_are_refused_in_one_line(
    tmp_path: Path, payload: object, refused: str
) -> None:
    path = tmp_path / "other.pth"
    torch.save(payload, path)
    with pytest.raises(DataError) as info:
        safe_load(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    assert "refused to load: it pickles " in message and refused in message
    assert "torch.save(model.state_dict(), path)" in message


def test_a_pickle_that_would_run_a_command_is_refused_unrun(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {"w": torch.ones(1)}, "x": _RunsACommand(marker)}, path)
    with pytest.raises(DataError, match="refused to load: it pickles .*system") as info:
        safe_load(path)
    assert not marker.exists() and "\n" not in str(info.value)


def test_missing_garbage_and_buffers(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        safe_load(tmp_path / "nope.pth")
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(DataError, match="not a torch file.*neither the zip archive") as info:
        safe_load(garbage)
    assert "\n" not in str(info.value)
    buffer = io.BytesIO()
    torch.save({"w": torch.arange(3)}, buffer)
    buffer.seek(0)
    loaded = safe_load(buffer, name="in-memory state")
    assert isinstance(loaded, dict) and loaded["w"].tolist() == [0, 1, 2]
