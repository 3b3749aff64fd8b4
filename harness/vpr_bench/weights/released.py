"""Released weights (``--checkpoint TAG``): the method that owns a tag, its file, its sha256.

A method plugin lists its released weights as :class:`~vpr_bench.specs.Checkpoint` s. This
module finds the file for one of them, in this order:

1. the file given with ``--weights`` (a copy the user downloaded anywhere);
2. the vpr-bench weights folder: ``$VPR_BENCH_WEIGHTS/<method>/<tag>/<file name>``
   (default ``~/.cache/vpr-bench/weights``);
3. torch's hub cache, ``<torch.hub.get_dir()>/checkpoints/<file name>`` (where
   ``torch.hub.load_state_dict_from_url`` puts the same release);
4. with ``--download``, and only when the published address is a direct file link, a download
   into place 2 (progress bar, sha256 checked, written atomically).

When the spec publishes a sha256 the file must have it; a mismatch is an error naming both
digests (a truncated download, or another file). When none is published, the file's own digest
is logged and recorded. Addresses that are web pages rather than files (a Google Drive folder,
a Baidu Netdisk or MEGA share) are never fetched: the error says where to download the file by
hand and where to put it.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlparse

from vpr_bench.atomic import new_file_mode
from vpr_bench.errors import DataError, UnknownNameError, UsageError
from vpr_bench.specs import Checkpoint, MethodSpec
from vpr_bench.weights.files import sha256_file

__all__ = [
    "WEIGHTS_ENV",
    "candidate_paths",
    "download",
    "find_checkpoint",
    "is_direct_link",
    "locate_checkpoint",
    "verify_checkpoint",
    "weights_dir",
]

log = logging.getLogger(__name__)

WEIGHTS_ENV = "VPR_BENCH_WEIGHTS"
DEFAULT_WEIGHTS_DIR = "~/.cache/vpr-bench/weights"
_PAGE_HOSTS = (
    "drive.google.com",
    "docs.google.com",
    "onedrive.live.com",
    "1drv.ms",
    "pan.baidu.com",
    "mega.nz",
    "mega.co.nz",
)
_CHUNK = 1 << 20


def weights_dir() -> Path:
    """``$VPR_BENCH_WEIGHTS``, else ``~/.cache/vpr-bench/weights``."""
    return Path(os.environ.get(WEIGHTS_ENV) or DEFAULT_WEIGHTS_DIR).expanduser()


def find_checkpoint(methods: Sequence[MethodSpec], tag: str) -> tuple[MethodSpec, Checkpoint]:
    """The method among ``methods`` that releases ``tag``, and its checkpoint spec.

    Raises:
        UnknownNameError: No method lists the tag; the message lists the tags there are.
        UsageError: Two of the methods list it (name one with ``--methods``).
    """
    owners = [(m, c) for m in methods for c in m.checkpoints if c.tag == tag]
    if len(owners) > 1:
        names = ", ".join(m.name for m, _ in owners)
        raise UsageError(
            f"Checkpoint {tag!r} is released by several methods ({names}); choose one with "
            f"--methods NAME."
        )
    if not owners:
        known = {c.tag: c for m in methods for c in m.checkpoints}
        hint = (
            "These methods release no weights."
            if not known
            else "Tags come from the methods' plugins; see: vpr-bench list methods."
        )
        raise UnknownNameError("checkpoint", tag, sorted(known), hint=hint)
    return owners[0]


def candidate_paths(method: MethodSpec, checkpoint: Checkpoint) -> list[Path]:
    """Where the file is looked for when ``--weights`` is not given (first existing wins)."""
    paths = [weights_dir() / method.name / checkpoint.tag / checkpoint.file_name]
    hub = _torch_hub_dir()
    if hub is not None:
        paths.append(hub / "checkpoints" / checkpoint.file_name)
    return paths


def _torch_hub_dir() -> Path | None:
    try:
        import torch.hub
    except ImportError:  # pragma: no cover - torch is a dependency
        return None
    return Path(torch.hub.get_dir())


def is_direct_link(uri: str) -> bool:
    """True for an http(s) or file address of a file (not a sharing page such as Drive)."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return True
    if parsed.scheme not in ("http", "https"):
        return False
    return not any(parsed.netloc.endswith(host) for host in _PAGE_HOSTS)


def locate_checkpoint(
    method: MethodSpec,
    checkpoint: Checkpoint,
    weights: Path | None = None,
    *,
    allow_download: bool = False,
    progress: bool = True,
) -> Path:
    """Find (or, with ``allow_download``, fetch) the file of ``checkpoint``.

    Args:
        method: The method that releases it.
        checkpoint: The released weights.
        weights: A file the user gave with ``--weights`` (used as is).
        allow_download: Download from ``checkpoint.file.uri`` when it is a direct link and no
            local copy exists.
        progress: Show a download progress bar.

    Returns:
        The path of the file (not yet verified: see :func:`verify_checkpoint`).

    Raises:
        DataError: ``weights`` does not exist, or there is no local copy and it cannot or may
            not be downloaded; the message says where to get the file and where to put it.
    """
    if weights is not None:
        if not Path(weights).is_file():
            raise DataError(
                f"--weights {weights} does not exist; give the downloaded "
                f"{checkpoint.file_name} of checkpoint {checkpoint.tag!r}."
            )
        return Path(weights)
    places = candidate_paths(method, checkpoint)
    for place in places:
        if place.is_file():
            log.info("checkpoint %s: using %s", checkpoint.tag, place)
            return place
    target = places[0]
    uri = checkpoint.file.uri
    if allow_download and is_direct_link(uri):
        return download(uri, target, checkpoint.file.sha256, progress=progress)
    looked = ", ".join(str(p) for p in places)
    if is_direct_link(uri):
        how = f"run again with --download to fetch it from {uri}, or download it yourself and"
    else:
        how = f"{uri} is a web page, not a file: download {checkpoint.file_name} from it and"
    raise DataError(
        f"Checkpoint {checkpoint.tag!r} of {method.name} needs {checkpoint.file_name}, which "
        f"is not here (looked in: {looked}). To get it, {how} put it at {target} (or pass "
        f"--weights FILE)."
    )


def verify_checkpoint(path: Path, checkpoint: Checkpoint) -> str:
    """The file's sha256, after checking it against the published one (when there is one).

    Raises:
        DataError: The digests differ; the message names both and how to fix it.
    """
    digest = sha256_file(path)
    expected = checkpoint.file.sha256
    if expected is None:
        log.warning(
            "checkpoint %s: no sha256 is published for %s, so the file cannot be verified; "
            "its sha256 %s goes into the records",
            checkpoint.tag,
            checkpoint.file_name,
            digest,
        )
    elif digest != expected:
        raise DataError(
            f"{path} has sha256 {digest}, but checkpoint {checkpoint.tag!r} was published with "
            f"{expected}: the file is damaged (an interrupted download?) or another file. "
            f"Delete it and download it again from {checkpoint.file.uri}."
        )
    return digest


def download(uri: str, target: Path, sha256: str | None, *, progress: bool = True) -> Path:
    """Download ``uri`` to ``target`` atomically, checking ``sha256`` before it lands.

    The bytes go to a temporary file beside ``target``; only a complete download whose digest
    matches replaces ``target``, so an interrupted or corrupt download never looks like a
    checkpoint.

    Raises:
        DataError: The download fails or its digest is not ``sha256``.
    """
    import hashlib
    import urllib.error
    import urllib.request

    from vpr_bench.progress import progress as show_progress

    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    os.fchmod(fd, new_file_mode())  # mkstemp's 0600 would ignore the umask
    digest = hashlib.sha256()
    log.info("downloading %s to %s", uri, target)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(uri, timeout=60) as response:
            size = response.headers.get("Content-Length")
            with show_progress(
                int(size) if size and size.isdigit() else None,
                target.name,
                "B",
                enabled=progress,
                unit_scale=True,
            ) as bar:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
            out.flush()
            os.fsync(out.fileno())
        got = digest.hexdigest()
        if sha256 is not None and got != sha256:
            raise DataError(
                f"The download of {uri} has sha256 {got}, expected {sha256}; nothing was kept. "
                f"Try again later, or download the file by hand and pass --weights FILE."
            )
        os.replace(tmp_name, target)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        Path(tmp_name).unlink(missing_ok=True)
        raise DataError(
            f"Cannot download {uri} ({exc}); download it by hand, put it at {target} or pass "
            f"--weights FILE."
        ) from exc
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return target
