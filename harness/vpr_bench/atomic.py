"""Atomic file writes: a temp file in the target's folder, fsync, then ``os.replace``.

A crash at any point leaves either the old file or the new one, never a truncated mix. Use it for
everything that matters: checkpoints, records, caches, generated data. The file gets the mode a
plain ``open()`` would give it (``0o666`` less the umask), not ``mkstemp``'s private 0600, so a
shared checkout stays readable by its group.

:func:`check_writable_dir` is the check an output folder passes before long work starts: it can
be created and written (a probe file is made and removed), and has room for what is known to go
there; it leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from vpr_bench.errors import UsageError, VprBenchError

__all__ = [
    "NO_SPACE",
    "atomic_open",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_many",
    "atomic_write_text",
    "check_writable_dir",
    "current_umask",
    "format_bytes",
    "new_file_mode",
]

NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})
"""The errnos of a full disk or an exhausted quota (retrying elsewhere helps)."""


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; on success it atomically replaces ``path``.

    Args:
        path: The final file path; its folder is created if missing.
        mode: ``"wb"`` or ``"w"`` (text, UTF-8).

    Yields:
        The open temporary file. If the block raises, the temporary file is removed and
        ``path`` is untouched.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_open supports modes 'wb' and 'w', not {mode!r}.")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        os.fchmod(fd, new_file_mode())  # mkstemp makes 0600; a plain open() honours the umask
        handle: IO[Any] = (
            os.fdopen(fd, "wb") if mode == "wb" else os.fdopen(fd, "w", encoding="utf-8")
        )
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)


def current_umask() -> int:
    """The process umask, read without changing it where the platform allows."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):  # pragma: no cover - not Linux
        pass
    mask = os.umask(0o022)  # pragma: no cover - the classic read-by-setting dance
    os.umask(mask)  # pragma: no cover
    return mask  # pragma: no cover


def new_file_mode() -> int:
    """The mode ``open()`` would give a new file: ``0o666`` less the umask (0644 under 022)."""
    return 0o666 & ~current_umask()


def _fsync_dir(folder: Path) -> None:
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(dir_fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(dir_fd)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    with atomic_open(path, "w") as handle:
        handle.write(text)


def atomic_write_many(files: Mapping[Path, bytes]) -> None:
    """Write every file of ``files``, or none of them.

    Each file is first written in full (and fsynced) to a temporary file beside its target;
    only when every one is written are they renamed into place (a rename needs no space). A
    full disk or a read-only folder therefore leaves every target as it was.

    Args:
        files: ``{target path: content}``; missing folders are created.

    Raises:
        OSError: The first write that failed (its ``filename`` names the file); no target has
            changed, and the temporary files and the folders this call made are removed.
    """
    staged: list[tuple[Path, Path]] = []
    made: list[Path] = []
    try:
        for target, data in files.items():
            target = Path(target)
            for folder in reversed([target.parent, *target.parent.parents]):
                if not folder.exists():
                    folder.mkdir()
                    made.append(folder)
            fd, tmp_name = tempfile.mkstemp(
                prefix=f".{target.name}.", suffix=".tmp", dir=target.parent
            )
            staged.append((Path(tmp_name), target))
            with os.fdopen(fd, "wb") as handle:
                os.fchmod(handle.fileno(), new_file_mode())
                try:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                except OSError as exc:
                    exc.filename = exc.filename or str(target)
                    raise
    except BaseException:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        for folder in reversed(made):
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    for tmp, target in staged:
        os.replace(tmp, target)
    for folder in {target.parent for _, target in staged}:
        _fsync_dir(folder)


def atomic_write_json(path: str | os.PathLike[str], data: Any) -> None:
    """Write ``data`` as indented, key-sorted JSON (with a final newline) atomically."""
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def format_bytes(n: int) -> str:
    """``n`` bytes in the largest binary unit that keeps the number >= 1 (``1.5 GiB``)."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def check_writable_dir(
    path: str | os.PathLike[str],
    label: str,
    fix: str,
    *,
    need_bytes: int = 0,
    space_fix: str | None = None,
) -> None:
    """Check that the folder ``path`` can be created and written, and has room for ``need_bytes``.

    Missing folders are created to try it and removed again; a probe file is created in
    ``path`` and removed. Nothing is left behind, whatever the outcome.

    Args:
        path: The output folder (it need not exist yet).
        label: What the folder is, for the message, e.g. ``"--out folder"``.
        fix: The sentence that says how to fix it, e.g. ``"Pass a writable folder to --out."``.
        need_bytes: Bytes that are known to go there (0: unknown; only writability is checked).
        space_fix: The sentence for a full disk (default: "Free space there, or " + ``fix``).

    Raises:
        UsageError: ``path`` or one of its parents is a file, or the folder cannot be created
            or written (read-only filesystem, no permission).
        VprBenchError: Its filesystem is full or has less than ``need_bytes`` free.
    """
    target = Path(path).expanduser()
    if space_fix is None:
        space_fix = f"Free space there, or {fix[:1].lower()}{fix[1:]}"
    for attempt in range(3):
        try:
            _probe(target, label, fix, space_fix, need_bytes)
            return
        except FileNotFoundError as exc:  # another process removed a folder it probed too
            if attempt == 2:
                reason = exc.strerror or str(exc)
                raise UsageError(f"{label} {target} is not writable ({reason}). {fix}") from exc
    raise AssertionError("unreachable")  # pragma: no cover


def _probe(target: Path, label: str, fix: str, space_fix: str, need_bytes: int) -> None:
    missing: list[Path] = []
    existing = target
    while not existing.exists() and not existing.is_symlink() and existing != existing.parent:
        missing.append(existing)
        existing = existing.parent
    if not existing.is_dir():
        raise _not_a_folder(label, target, existing, fix)
    created: list[Path] = []
    try:
        for folder in reversed(missing):
            try:
                folder.mkdir()
            except FileExistsError:
                if not folder.is_dir():
                    raise _not_a_folder(label, target, folder, fix) from None
                continue  # made by someone else meanwhile: not ours to remove
            created.append(folder)
        fd, probe = tempfile.mkstemp(prefix=".vpr-bench-probe-", suffix=".tmp", dir=target)
        try:
            os.write(fd, b"probe")
        finally:
            os.close(fd)
            os.unlink(probe)
        free = shutil.disk_usage(target).free if need_bytes > 0 else 0
    except FileNotFoundError:
        raise
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if exc.errno in NO_SPACE:
            raise VprBenchError(
                f"{label} {target}: {reason}; nothing was written. {space_fix}"
            ) from exc
        raise UsageError(f"{label} {target} is not writable ({reason}). {fix}") from exc
    finally:
        for folder in reversed(created):
            with contextlib.suppress(OSError):
                folder.rmdir()
    if need_bytes > free:
        raise VprBenchError(
            f"{label} {target} has {format_bytes(free)} free on its filesystem and "
            f"{format_bytes(need_bytes)} are needed; nothing was written. {space_fix}"
        )


def _not_a_folder(label: str, target: Path, blocker: Path, fix: str) -> UsageError:
    what = "a file, not a folder" if blocker.is_file() else "not a folder"
    if blocker == target:
        return UsageError(f"{label} {target} is {what}. {fix}")
    return UsageError(f"{label} {target} cannot be made: {blocker} is {what}. {fix}")
