"""Loading DISAM's released weights (``Plexer.save`` layout; methods.md A.4, oracles §9).

The reference saves one plain state dict per network (``base_model.py:42-58``,
``networks.py:337-345``): ``<checkpoints>/<name>/<epoch>_net_G<i>.pth`` with ``i < n`` the
domain encoders and ``n <= i < 2n`` the decoders, and ``<epoch>_net_D<i>.pth`` the
discriminators. The released file (a Google-Drive archive, README "pretrained models") holds
such folders (``CMU_coarse``, ``CMU_fine``, ``robotcar_coarse``, ``robotcar_fine``, and the
epoch-300 translation models).

:func:`find_network_files` locates the files of one model in an extracted folder or in a
``.zip``/``.tar*`` archive (extracted to a temporary folder); :func:`load_encoders` loads the n
encoders strictly, one file at a time, listing every missing, unexpected and mis-shaped entry
of a file that does not fit.
"""

from __future__ import annotations

import os
import re
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from vpr_bench.errors import DataError
from vpr_bench.weights import safe_load

if TYPE_CHECKING:
    from vpr_bench.weights import PcaWhitening

__all__ = [
    "NetworkFiles",
    "find_network_files",
    "load_encoders",
    "load_network",
    "load_plexer",
    "load_released",
    "load_released_pair",
    "network_problems",
    "opened",
]

_FILE_RE = re.compile(r"^(?P<epoch>\d+|latest)_net_(?P<kind>[GD])(?P<index>\d+)\.pth$")


class NetworkFiles:
    """The per-network files of one saved model (one ``<name>`` folder, one epoch).

    Attributes:
        folder: The folder holding them.
        epoch: The epoch prefix (e.g. ``"1200"``).
        generators: ``{i: path}`` of ``<epoch>_net_G<i>.pth``.
        discriminators: ``{i: path}`` of ``<epoch>_net_D<i>.pth``.
    """

    def __init__(self, folder: Path, epoch: str) -> None:
        self.folder = folder
        self.epoch = epoch
        self.generators: dict[int, Path] = {}
        self.discriminators: dict[int, Path] = {}
        for path in sorted(folder.iterdir()):
            match = _FILE_RE.match(path.name)
            if not match or match["epoch"] != epoch:
                continue
            table = self.generators if match["kind"] == "G" else self.discriminators
            table[int(match["index"])] = path

    def encoder(self, index: int, n_domains: int) -> Path:
        """The file of encoder ``index`` (``G<index>``); refuses a missing one, naming it."""
        return self._need(self.generators, index, f"encoder {index} of {n_domains}", "G")

    def decoder(self, index: int, n_domains: int) -> Path:
        """The file of decoder ``index`` (``G<n + index>``)."""
        return self._need(
            self.generators, n_domains + index, f"decoder {index} of {n_domains}", "G"
        )

    def discriminator(self, index: int, n_domains: int) -> Path:
        """The file of discriminator ``index`` (``D<index>``)."""
        return self._need(self.discriminators, index, f"discriminator {index} of {n_domains}", "D")

    def _need(self, table: Mapping[int, Path], index: int, what: str, kind: str) -> Path:
        if index not in table:
            raise DataError(
                f"DISAM weights: {self.folder / f'{self.epoch}_net_{kind}{index}.pth'} is "
                f"missing ({what}); the folder must hold every network of epoch {self.epoch} "
                "as the reference's Plexer.save writes them."
            )
        return table[index]


@contextmanager
def opened(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A folder with the content of ``path``: the folder itself, or an archive extracted.

    Archives (``.zip``, ``.tar``, ``.tar.gz``, ``.tgz``) are extracted into a temporary folder
    that is removed on exit; members escaping the folder are refused.

    Raises:
        DataError: ``path`` does not exist, or is neither a folder nor a readable archive.
    """
    file = Path(path)
    if file.is_dir():
        yield file
        return
    if not file.is_file():
        raise DataError(
            f"DISAM weights {file} do not exist; give the released archive or the folder "
            "it was extracted to."
        )
    with tempfile.TemporaryDirectory(prefix="vpr-bench-disam-") as tmp:
        target = Path(tmp)
        try:
            if zipfile.is_zipfile(file):
                with zipfile.ZipFile(file) as archive:
                    _check_members(file, archive.namelist(), target)
                    archive.extractall(target)
            elif tarfile.is_tarfile(file):
                with tarfile.open(file) as archive:
                    archive.extractall(target, filter="data")
            else:
                raise DataError(
                    f"DISAM weights {file} are neither a folder nor a .zip/.tar archive; give "
                    "the released archive or the folder it was extracted to."
                )
        except (OSError, zipfile.BadZipFile, tarfile.TarError) as exc:
            raise DataError(f"DISAM weights {file}: cannot extract the archive ({exc}).") from exc
        yield target


def _check_members(file: Path, names: Sequence[str], target: Path) -> None:
    root = target.resolve()
    for name in names:
        resolved = (target / name).resolve()
        if resolved != root and root not in resolved.parents:
            raise DataError(f"DISAM weights {file}: archive member {name!r} escapes its folder.")


def find_network_files(root: Path, name: str, epoch: int | str) -> NetworkFiles:
    """The files of model ``name`` at ``epoch`` under ``root`` (searched recursively).

    ``root`` may be the model folder itself (holding ``<epoch>_net_G0.pth``) or any folder
    above one named ``name`` (e.g. the reference's ``checkpoints/``).

    Raises:
        DataError: No such folder, or several; the message lists what was found.
    """
    epoch = str(epoch)
    marker = f"{epoch}_net_G0.pth"
    if (root / marker).is_file():
        return NetworkFiles(root, epoch)
    found = sorted(p.parent for p in root.rglob(marker) if p.parent.name == name)
    if len(found) == 1:
        return NetworkFiles(found[0], epoch)
    if found:
        listed = ", ".join(str(p) for p in found)
        raise DataError(f"DISAM weights {root}: several '{name}' folders hold {marker}: {listed}.")
    models = sorted(
        {f"{p.parent.name} ({p.name.split('_')[0]})" for p in root.rglob("*_net_G0.pth")}
    )
    have = "; it holds: " + ", ".join(models) if models else "; it holds no *_net_G0.pth at all"
    raise DataError(
        f"DISAM weights {root}: no folder '{name}' with {marker} (model {name}, epoch {epoch})"
        f"{have}."
    )


def network_problems(state: Mapping[str, torch.Tensor], network: nn.Module) -> list[str]:
    """Missing, unexpected and mis-shaped entries of ``state`` for ``network`` (empty: fits)."""
    expected = network.state_dict()
    problems: list[str] = []
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shaped = [
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    if missing:
        problems.append("missing " + ", ".join(missing))
    if unexpected:
        problems.append("unexpected " + ", ".join(unexpected))
    if shaped:
        problems.append("mis-shaped (file vs model) " + ", ".join(shaped))
    return problems


def load_network(path: Path, network: nn.Module, what: str) -> None:
    """Load one plain state dict strictly into ``network``.

    Raises:
        DataError: The file is not a state dict or does not fit; the message names the file
            and lists every missing, unexpected and mis-shaped entry.
    """
    state = safe_load(path, name=f"DISAM {what} {path}")
    if not isinstance(state, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise DataError(
            f"DISAM weights {path} ({what}) are not a plain state dict of tensors, as the "
            "reference's Plexer.save writes."
        )
    problems = network_problems(state, network)
    if problems:
        raise DataError(f"DISAM weights {path} do not fit the {what}: {'; '.join(problems)}.")
    network.load_state_dict(dict(state), strict=True)


def load_encoders(files: NetworkFiles, encoders: nn.ModuleList) -> None:
    """Load ``encoders[i]`` from ``G<i>`` for every domain (strict per file)."""
    count = len(encoders)
    _refuse_other_domain_count(files, count)
    for i, encoder in enumerate(encoders):
        load_network(files.encoder(i, count), encoder, f"encoder {i}")


def load_plexer(
    files: NetworkFiles,
    encoders: nn.ModuleList,
    decoders: nn.ModuleList | None = None,
    discriminators: nn.ModuleList | None = None,
) -> None:
    """Load encoders, and decoders and discriminators when given (the trainer's networks)."""
    load_encoders(files, encoders)
    count = len(encoders)
    for i, decoder in enumerate(decoders or ()):
        load_network(files.decoder(i, count), decoder, f"decoder {i}")
    for i, discriminator in enumerate(discriminators or ()):
        load_network(files.discriminator(i, count), discriminator, f"discriminator {i}")


def _refuse_other_domain_count(files: NetworkFiles, count: int) -> None:
    """Refuse a folder saved for another number of domains.

    ``Plexer.save`` writes n discriminator files and 2n generator files; a folder holding only
    the encoders (n generator files) is accepted too.
    """
    saved_d = len(files.discriminators)
    saved_g = len(files.generators)
    if saved_d:
        fits, domains = saved_d == count, str(saved_d)
    else:
        fits, domains = saved_g in (count, 2 * count), f"{saved_g // 2} or {saved_g}"
    if not fits:
        raise DataError(
            f"DISAM weights {files.folder} hold {domains} domains ({saved_g} G files, {saved_d} "
            f"D files at epoch {files.epoch}) but the model has {count}; set model.n_domains "
            "to the saved count, or map the dataset's domains onto these encoders."
        )


def load_released(
    path: str | os.PathLike[str], model: nn.Module, name: str, epoch: int | str
) -> PcaWhitening | None:
    """``Checkpoint.load`` body: the encoders of ``name`` at ``epoch`` into a ``disam`` model.

    A ``disam-c2f`` model (``coarse`` and ``fine`` sub-models) is loaded by
    :func:`load_released_pair`.

    Raises:
        DataError: Missing/unreadable files, another domain count, or a file that does not fit.
    """
    encoders = getattr(model, "encoders", None)
    if not isinstance(encoders, nn.ModuleList):
        raise DataError(
            f"DISAM weights {path} load into a 'disam' model (its per-domain encoders), not "
            f"into {type(model).__name__}."
        )
    with opened(path) as root:
        load_encoders(find_network_files(root, name, epoch), encoders)
    return None


def load_released_pair(
    path: str | os.PathLike[str],
    model: nn.Module,
    names: tuple[str, str],
    epoch: int | str,
) -> PcaWhitening | None:
    """``Checkpoint.load`` body of ``disam-c2f``: coarse encoders from ``names[0]``, fine from
    ``names[1]`` (the README's ``--name CMU_coarse --name_finer CMU_fine``).

    Raises:
        DataError: As :func:`load_released`, or a model without ``coarse``/``fine`` parts.
    """
    coarse, fine = getattr(model, "coarse", None), getattr(model, "fine", None)
    if not isinstance(coarse, nn.Module) or not isinstance(fine, nn.Module):
        raise DataError(
            f"DISAM weights {path}: the coarse-to-fine checkpoint loads into a 'disam-c2f' "
            f"model, not into {type(model).__name__}."
        )
    with opened(path) as root:
        for part, name in ((coarse, names[0]), (fine, names[1])):
            encoders = getattr(part, "encoders", None)
            assert isinstance(encoders, nn.ModuleList)
            load_encoders(find_network_files(root, name, epoch), encoders)
    return None
