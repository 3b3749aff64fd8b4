"""Fixtures of the fault catalogue: small folders built from the real shared fixtures."""

from __future__ import annotations

import builtins
import errno
import io
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest


def files_under(root: Path) -> set[str]:
    """Every file below ``root``, relative, so a test can assert nothing was left behind."""
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def corridor_copy(shared_data: Path, tmp_path: Path) -> Path:
    """A VPR-Bench corridor folder whose images link to the real ones; its GT is a copy."""
    real = shared_data / "vpr_bench" / "datasets" / "corridor"
    root = tmp_path / "corridor"
    for folder in ("ref", "query"):
        (root / folder).mkdir(parents=True)
        for image in (real / folder).iterdir():
            (root / folder / image.name).symlink_to(image)
    (root / "ground_truth_new.npy").write_bytes((real / "ground_truth_new.npy").read_bytes())
    return root


@pytest.fixture(scope="session")
def tiny_city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny synthetic city (seed 0), rendered once per session; treat it as read-only."""
    from vpr_bench.data.synthcity import prepare

    return Path(prepare(tmp_path_factory.mktemp("data"), "tiny", seed=0, progress=False))


ReadOnly = Callable[[Path], Path]


def _is_under(root: str, path: object) -> bool:
    if isinstance(path, int):  # a file descriptor: not a path
        return False
    try:
        name = os.path.abspath(os.fsdecode(path))  # type: ignore[arg-type]
    except TypeError:
        return False
    return name == root or name.startswith(root + os.sep)


@pytest.fixture
def read_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[ReadOnly]:
    """Make folders read-only: ``read_only(folder)`` returns ``folder``, which now refuses writes.

    Not root: ``chmod 0555``, for real (EACCES). As root, where permission bits stop no write,
    a read-only file system is injected instead: creating, opening for writing, renaming or
    removing anything below the folder raises ``OSError(EROFS)`` at ``os.open``, ``os.mkdir``,
    ``open`` and friends, the calls every write goes through.
    """
    chmodded: list[Path] = []
    roots: list[str] = []
    if os.geteuid() == 0:
        _inject_read_only(monkeypatch, roots)

    def make(folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            roots.append(os.path.abspath(folder))
        else:
            folder.chmod(0o555)
            chmodded.append(folder)
        return folder

    yield make
    for folder in chmodded:
        folder.chmod(0o755)


_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def _inject_read_only(monkeypatch: pytest.MonkeyPatch, roots: list[str]) -> None:
    def refuse(path: object) -> None:
        if any(_is_under(root, path) for root in roots):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fsdecode(path))  # type: ignore[arg-type]

    real_open, real_mkdir, real_builtin_open = os.open, os.mkdir, builtins.open

    def os_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if flags & _WRITE_FLAGS:
            refuse(path)
        return real_open(path, flags, *args, **kwargs)

    def mkdir(path: Any, *args: Any, **kwargs: Any) -> None:
        if os.path.lexists(path):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), os.fsdecode(path))
        refuse(path)
        real_mkdir(path, *args, **kwargs)

    def open_(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if any(flag in mode for flag in "wax+"):
            refuse(file)
        return real_builtin_open(file, mode, *args, **kwargs)

    def refusing(real: Callable[..., Any]) -> Callable[..., Any]:
        def call(path: Any, *args: Any, **kwargs: Any) -> Any:
            refuse(path)
            for other in args[:1]:  # rename/replace: the destination too
                refuse(other)
            return real(path, *args, **kwargs)

        return call

    monkeypatch.setattr(os, "open", os_open)
    monkeypatch.setattr(os, "mkdir", mkdir)
    monkeypatch.setattr(builtins, "open", open_)
    monkeypatch.setattr(io, "open", open_)
    for name in ("replace", "rename", "unlink", "remove", "rmdir"):
        monkeypatch.setattr(os, name, refusing(getattr(os, name)))
