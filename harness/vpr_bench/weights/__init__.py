"""Model weights: safe loading, released checkpoints, PCA-whitening and strict key reports.

This package is public: the harness and method plugins use it, and nothing else reads a weights
file. What each part is for:

Loading a file
    :func:`load_weights_file` is what every ``--weights FILE`` goes through: it hashes the file
    once, loads it strictly in the vpr-bench layout or, when the keys do not fit, through the
    method's ``weights_loader`` (see :class:`~vpr_bench.specs.MethodSpec`), and returns a
    :class:`LoadedWeights` (sha256, the PCA the file carries, which loader read it).
    :func:`load_state_file` loads a vpr-bench state-dict file without hashing it (the caller
    already has the digest, e.g. after :func:`verify_checkpoint`).

The one safe loader
    :func:`safe_load` is the only place in vpr-bench that calls ``torch.load``; it always
    passes ``weights_only=True`` and admits numpy scalars and dtypes
    (:func:`numpy_safe_globals`) and nothing else. A plugin that reads its own file format
    calls it too, then maps the keys::

        from vpr_bench.weights import compare_keys, safe_load

        payload = safe_load(path)  # a dict of tensors (and numbers, strings)
        state = {key.replace("backbone.", "trunk."): t for key, t in payload["state_dict"].items()}
        report = compare_keys(model.state_dict(), state)
        if not report.ok:
            raise report.error(path, "my-model", hint="Use backbone=resnet50.")
        model.load_state_dict(state)

    :func:`extract_state_dict` finds the tensors inside common trainer layouts and strips
    ``module.``/``_orig_mod.`` prefixes (:func:`strip_prefixes`); :func:`sha256_file` and
    :func:`state_dict_digest` identify a file or a model in records and caches.

Strict key reports
    :func:`compare_keys` -> :class:`KeyReport` (missing, unexpected and shape-mismatched keys);
    ``report.error(path, model_name)`` is the one-line error every strict loader raises.

Released checkpoints (``--checkpoint TAG``)
    :func:`find_checkpoint` (which method releases a tag), :func:`locate_checkpoint` (the
    local file: ``$VPR_BENCH_WEIGHTS``, torch's hub cache, or a download with ``--download``),
    :func:`verify_checkpoint` (sha256 against the published digest), :func:`download`.

PCA-whitening
    :func:`fit_pca` fits :class:`PcaWhitening` in the OpenIBL convention;
    ``PcaWhitening.from_linear(weight, bias)`` wraps a projection stored in a weights file.

Resumable training state (optimiser, RNG, loop position) is not a weights file: it lives in
:mod:`vpr_bench.train.state` and is read through :func:`safe_load` too.
"""

from __future__ import annotations

from vpr_bench.weights.files import (
    extract_state_dict,
    load_state_file,
    numpy_safe_globals,
    safe_load,
    sha256_file,
    state_dict_digest,
    strip_prefixes,
)
from vpr_bench.weights.keys import KeyReport, ShapeMismatch, compare_keys
from vpr_bench.weights.load import STATE_DICT_LOADER, LoadedWeights, load_weights_file
from vpr_bench.weights.pca import PcaWhitening, fit_pca
from vpr_bench.weights.released import (
    WEIGHTS_ENV,
    candidate_paths,
    download,
    find_checkpoint,
    is_direct_link,
    locate_checkpoint,
    verify_checkpoint,
    weights_dir,
)

__all__ = [
    "STATE_DICT_LOADER",
    "WEIGHTS_ENV",
    "KeyReport",
    "LoadedWeights",
    "PcaWhitening",
    "ShapeMismatch",
    "candidate_paths",
    "compare_keys",
    "download",
    "extract_state_dict",
    "find_checkpoint",
    "fit_pca",
    "is_direct_link",
    "load_state_file",
    "load_weights_file",
    "locate_checkpoint",
    "numpy_safe_globals",
    "safe_load",
    "sha256_file",
    "state_dict_digest",
    "strip_prefixes",
    "verify_checkpoint",
    "weights_dir",
]
