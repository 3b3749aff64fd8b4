"""``--weights FILE``: one function loads any weights file a method can read.

:func:`load_weights_file` hashes the file once, then tries the vpr-bench layout (a state dict,
possibly nested under ``state_dict``/``model``, with ``module.`` prefixes); when the keys do not
fit and the method declares a ``weights_loader`` (:class:`~vpr_bench.specs.MethodSpec`), the
file goes through that loader (e.g. OpenIBL's key names and its folded PCA layer).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vpr_bench.errors import DataError
from vpr_bench.registry import resolve
from vpr_bench.weights.files import extract_state_dict, safe_load, sha256_file
from vpr_bench.weights.keys import KeyReport, compare_keys

if TYPE_CHECKING:
    from torch import nn

    from vpr_bench.specs import LazyCallable, MethodSpec
    from vpr_bench.weights.pca import PcaWhitening

__all__ = ["STATE_DICT_LOADER", "LoadedWeights", "load_weights_file"]

log = logging.getLogger(__name__)

STATE_DICT_LOADER = "state-dict"
""":attr:`LoadedWeights.loader` of a file in the vpr-bench (state-dict) layout."""


@dataclass(frozen=True)
class LoadedWeights:
    """What loading a weights file produced, besides the weights now in the model.

    Attributes:
        sha256: The file's sha256 hex digest (for the record).
        pca: The PCA-whitening stored in the file (OpenIBL's hub release has one), or None.
        loader: :data:`STATE_DICT_LOADER`, or the ``"pkg.mod:fn"`` of the method's loader.
    """

    sha256: str
    pca: PcaWhitening | None
    loader: str


def load_weights_file(
    model: nn.Module, path: str | os.PathLike[str], *, method: MethodSpec | None = None
) -> LoadedWeights:
    """Load ``path`` into ``model`` strictly, in the vpr-bench layout or the method's own.

    Args:
        model: The freshly built model (its config must match the file's).
        path: The weights file (``--weights``).
        method: The method being evaluated; its ``weights_loader`` reads files in a foreign
            layout. None (a bare model): only the vpr-bench layout is read.

    Returns:
        The file's sha256, the PCA the file carries (if any) and which loader read it.

    Raises:
        DataError: Missing file, a file that pickles code (refused unread), or weights that do
            not fit; the message lists missing, unexpected and shape-mismatched keys.
    """
    path = Path(path)
    digest = sha256_file(path)
    payload = safe_load(path)  # a refused pickle stops here, before any loader sees it
    report: KeyReport | None
    try:
        state = extract_state_dict(payload, path)
    except DataError as exc:
        report, layout = None, str(exc)
    else:
        report = compare_keys(model.state_dict(), state)
        if report.ok:
            model.load_state_dict(state, strict=True)
            return LoadedWeights(digest, None, STATE_DICT_LOADER)
        layout = report.describe()
    target = method.weights_loader if method is not None else None
    if method is None or target is None:
        owner = f"method {method.name} declares" if method is not None else "a bare model has"
        hint = (
            "Check that the file belongs to this model and its config (--profile, --set "
            f"model.*); {owner} no loader for files in another project's layout."
        )
        if report is None:
            raise DataError(f"{layout} {hint}")
        raise report.error(path, type(model).__name__, hint=hint)
    name = _target_name(target)
    try:
        pca: PcaWhitening | None = resolve(target)(path, model)
    except DataError as exc:
        raise DataError(
            f"{path} fits neither the vpr-bench state-dict layout ({layout}) nor method "
            f"{method.name}'s weights loader {name} ({exc})"
        ) from exc
    log.info("%s: read by %s (method %s)", path, name, method.name)
    return LoadedWeights(digest, pca, name)


def _target_name(target: LazyCallable) -> str:
    if isinstance(target, str):
        return target
    return f"{getattr(target, '__module__', '?')}:{getattr(target, '__qualname__', repr(target))}"
