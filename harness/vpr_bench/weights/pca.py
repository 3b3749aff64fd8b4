"""PCA-whitening in the OpenIBL convention (methods.md §1.10, oracle ``pca_openibl.npz``).

Fitting on ``N`` descriptors of dimension ``D``:

1. ``mu`` is the mean descriptor; ``Xc = X - mu`` (one descriptor per row).
2. Primal when ``D <= N``: the ``D x D`` covariance ``Xcᵀ Xc / (N - 1)``. Dual when ``D > N``
   (the real OpenIBL case, 10 000 x 32 768): the ``N x N`` Gram matrix ``Xc Xcᵀ / (N - 1)``.
3. Symmetric eigen-decomposition; the ``k`` largest eigenpairs in **descending** order;
   eigenvalues clamped to ``>= 1e-9``.
4. Dual only: primal eigenvectors ``U = Xcᵀ u diag(lam^-1/2) / sqrt(N - 1)`` (unit columns).

Applying: ``y = normalize(W v + b)`` with ``W = (U diag(lam^-1/2))ᵀ`` (whitening) or ``W = Uᵀ``,
and ``b = -W mu``. Eigenvector signs depend on the solver; they do not change distances.

OpenIBL keeps the *ascending* order when ``k`` equals the size of the eigen-problem (a latent
quirk, methods.md O-1). We always sort descending; for that case the output is the same
vector with its coordinates reversed, so every distance is unchanged.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, overload

from vpr_bench.atomic import new_file_mode
from vpr_bench.errors import DataError, UsageError

if TYPE_CHECKING:
    import numpy as np
    import torch

__all__ = ["EIGENVALUE_FLOOR", "PcaWhitening", "fit_pca"]

log = logging.getLogger(__name__)

EIGENVALUE_FLOOR = 1e-9
"""Eigenvalues are clamped to at least this value (OpenIBL ``pca.py``)."""

_H5_KEYS = ("U", "lams", "mu", "Utmu")


def _as_tensor(x: np.ndarray | torch.Tensor, what: str) -> torch.Tensor:
    import numpy as np
    import torch

    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
    if not isinstance(x, torch.Tensor):
        raise UsageError(f"{what} must be a numpy array or torch tensor, got {type(x).__name__}.")
    if x.ndim != 2:
        raise UsageError(f"{what} must be a 2-D [N, D] array, got shape {tuple(x.shape)}.")
    if not x.is_floating_point():
        x = x.to(torch.float32)
    return x


@dataclass(frozen=True)
class PcaWhitening:
    """A fitted PCA(-whitening): projection ``U [D, k]``, eigenvalues ``lams [k]``, mean ``mu [D]``.

    Attributes:
        U: Unit-norm principal directions as columns, largest eigenvalue first.
        lams: The eigenvalues, clamped to ``>= 1e-9``.
        mu: The mean of the fit set.
        whiten: Divide each component by ``sqrt(lam)`` (OpenIBL default) or not (``--nowhiten``).
        offset: An explicit bias ``[k]`` for a projection released already folded into a
            linear layer (OpenIBL's hub ``pca_layer``, see :meth:`from_linear`); None: the bias
            is ``-weight @ mu``.
    """

    U: torch.Tensor
    lams: torch.Tensor
    mu: torch.Tensor
    whiten: bool = True
    offset: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.U.ndim != 2 or self.lams.ndim != 1 or self.mu.ndim != 1:
            raise UsageError(
                f"PcaWhitening needs U [D, k], lams [k], mu [D]; got {tuple(self.U.shape)}, "
                f"{tuple(self.lams.shape)}, {tuple(self.mu.shape)}."
            )
        if self.U.shape[1] != self.lams.shape[0] or self.U.shape[0] != self.mu.shape[0]:
            raise UsageError(
                f"PcaWhitening shapes disagree: U {tuple(self.U.shape)}, lams "
                f"{tuple(self.lams.shape)}, mu {tuple(self.mu.shape)}."
            )
        if self.offset is not None and tuple(self.offset.shape) != (self.U.shape[1],):
            raise UsageError(
                f"PcaWhitening offset must be [{self.U.shape[1]}], got {tuple(self.offset.shape)}."
            )

    @classmethod
    def from_linear(cls, weight: torch.Tensor, bias: torch.Tensor) -> PcaWhitening:
        """The projection ``x -> weight @ x + bias`` (then L2), as released folded into a layer.

        Args:
            weight: ``[k, D]`` (a 1x1 convolution's ``[k, D, 1, 1]`` is accepted too).
            bias: ``[k]``.

        Returns:
            A PCA whose :attr:`weight` and :attr:`bias` are exactly these tensors.
        """
        import torch

        matrix = weight.reshape(weight.shape[0], -1) if weight.ndim == 4 else weight
        k, d = int(matrix.shape[0]), int(matrix.shape[1])
        return cls(
            matrix.T.contiguous(),
            torch.ones(k, dtype=matrix.dtype),
            torch.zeros(d, dtype=matrix.dtype),
            whiten=False,
            offset=bias.reshape(-1).clone(),
        )

    @property
    def input_dim(self) -> int:
        """``D``, the descriptor dimension before PCA."""
        return int(self.U.shape[0])

    @property
    def n_components(self) -> int:
        """``k``, the output dimension."""
        return int(self.U.shape[1])

    @property
    def weight(self) -> torch.Tensor:
        """``[k, D]``: ``(U diag(lam^-1/2))ᵀ`` with whitening, else ``Uᵀ``."""
        uw = self.U * self.lams.rsqrt()[None, :] if self.whiten else self.U
        return uw.T.contiguous()

    @property
    def bias(self) -> torch.Tensor:
        """``[k]``: ``-weight @ mu`` (or the explicit :attr:`offset`)."""
        if self.offset is not None:
            return self.offset
        return -(self.weight @ self.mu)

    def truncated(self, n_components: int) -> PcaWhitening:
        """The first ``n_components`` components (OpenIBL ``load()`` with a smaller ``k``)."""
        if not 1 <= n_components <= self.n_components:
            raise UsageError(f"PCA has {self.n_components} components; cannot keep {n_components}.")
        offset = None if self.offset is None else self.offset[:n_components]
        return PcaWhitening(
            self.U[:, :n_components], self.lams[:n_components], self.mu, self.whiten, offset
        )

    def to(self, device: str | torch.device) -> PcaWhitening:
        """The same PCA with its tensors on ``device``."""
        offset = None if self.offset is None else self.offset.to(device)
        return PcaWhitening(
            self.U.to(device), self.lams.to(device), self.mu.to(device), self.whiten, offset
        )

    @overload
    def apply(self, x: np.ndarray, *, chunk_rows: int = ...) -> np.ndarray: ...

    @overload
    def apply(self, x: torch.Tensor, *, chunk_rows: int = ...) -> torch.Tensor: ...

    def apply(
        self, x: np.ndarray | torch.Tensor, *, chunk_rows: int = 8192
    ) -> np.ndarray | torch.Tensor:
        """Project, whiten and L2-normalise descriptors, ``[M, D] -> [M, k]``.

        The matmul runs on the descriptors' device and dtype, ``chunk_rows`` rows at a time.

        Args:
            x: Descriptors, one per row (numpy array or torch tensor).
            chunk_rows: Rows per matmul block (bounds the temporary memory).

        Returns:
            The same kind of array as ``x`` (a numpy array for numpy input).

        Raises:
            UsageError: If ``x`` is not ``[M, D]`` with the PCA's ``D``.
        """
        import numpy as np
        import torch
        import torch.nn.functional as F

        is_numpy = isinstance(x, np.ndarray)
        t = _as_tensor(x, "PCA input")
        if t.shape[1] != self.input_dim:
            raise UsageError(
                f"PCA input has dimension {t.shape[1]}, but this PCA was fitted on "
                f"{self.input_dim}-D descriptors."
            )
        if chunk_rows < 1:
            raise UsageError(f"chunk_rows must be >= 1, got {chunk_rows}.")
        weight_t = self.weight.to(device=t.device, dtype=t.dtype).T.contiguous()
        bias = self.bias.to(device=t.device, dtype=t.dtype)
        out = torch.empty((t.shape[0], self.n_components), dtype=t.dtype, device=t.device)
        with torch.no_grad():
            for start in range(0, t.shape[0], chunk_rows):
                block = t[start : start + chunk_rows]
                y = torch.addmm(bias, block, weight_t)
                out[start : start + chunk_rows] = F.normalize(y, p=2.0, dim=1, eps=1e-12)
        return out.cpu().numpy() if is_numpy else out

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Tensors to save with a method's weights (``U``, ``lams``, ``mu``, ``whiten``)."""
        import torch

        state = {
            "U": self.U,
            "lams": self.lams,
            "mu": self.mu,
            "whiten": torch.tensor(self.whiten),
        }
        if self.offset is not None:
            state["offset"] = self.offset
        return state

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor]) -> PcaWhitening:
        """Rebuild from :meth:`state_dict` output (e.g. after ``torch.load(weights_only=True)``).

        Raises:
            DataError: If a key is missing.
        """
        missing = [k for k in ("U", "lams", "mu", "whiten") if k not in state]
        if missing:
            raise DataError(
                f"PCA state dict lacks {missing}; expected keys U, lams, mu, whiten "
                "(as written by PcaWhitening.state_dict())."
            )
        return cls(
            state["U"],
            state["lams"],
            state["mu"],
            bool(state["whiten"].item()),
            state.get("offset"),
        )

    def save_h5(self, path: str | os.PathLike[str]) -> Path:
        """Write the OpenIBL HDF5 layout atomically (temp file, fsync, replace).

        Datasets: ``U [D,k]``, ``lams [k]``, ``mu [D,1]``, ``Utmu [k,1]`` (``= Uᵀ mu``).

        Args:
            path: Target file (e.g. ``pca_params_model_best.h5``); its folder is created.

        Returns:
            The path written.
        """
        import h5py

        if self.offset is not None:
            raise UsageError(
                "This PCA was released folded into a linear layer (explicit offset); the "
                "OpenIBL HDF5 layout cannot hold it. Save state_dict() with torch.save instead."
            )
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        u = self.U.detach().cpu().numpy()
        mu = self.mu.detach().cpu().numpy().reshape(-1, 1)
        arrays = {"U": u, "lams": self.lams.detach().cpu().numpy(), "mu": mu, "Utmu": u.T @ mu}
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.fchmod(fd, new_file_mode())  # mkstemp's 0600 would ignore the umask
        os.close(fd)
        try:
            with h5py.File(tmp_name, "w") as handle:
                for key in _H5_KEYS:
                    handle.create_dataset(key, data=arrays[key])
            with open(tmp_name, "rb+") as raw:
                os.fsync(raw.fileno())
            os.replace(tmp_name, target)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        return target

    @classmethod
    def load_h5(
        cls,
        path: str | os.PathLike[str],
        n_components: int | None = None,
        whiten: bool = True,
    ) -> PcaWhitening:
        """Read an OpenIBL PCA file (ours or one written by OpenIBL's ``pca.py``).

        Args:
            path: The ``.h5`` file with datasets ``U``, ``lams``, ``mu`` (``Utmu`` is ignored).
            n_components: Keep the first ``k`` components (default: all in the file).
            whiten: Whitening on (default) or off.

        Raises:
            DataError: If the file is missing, unreadable or lacks a dataset.
        """
        import h5py
        import torch

        source = Path(path)
        if not source.is_file():
            raise DataError(f"PCA file {source} does not exist; fit PCA first (fit_pca).")
        try:
            with h5py.File(source, "r") as handle:
                missing = [k for k in ("U", "lams", "mu") if k not in handle]
                if missing:
                    raise DataError(
                        f"PCA file {source} lacks datasets {missing}; expected U [D,k], "
                        "lams [k], mu [D,1] (OpenIBL layout)."
                    )
                u, lams, mu = (handle[k][()] for k in ("U", "lams", "mu"))
        except OSError as exc:
            raise DataError(f"PCA file {source} is not a readable HDF5 file: {exc}") from exc
        pca = cls(
            torch.from_numpy(u),
            torch.from_numpy(lams.reshape(-1)),
            torch.from_numpy(mu.reshape(-1)),
            whiten,
        )
        return pca if n_components is None else pca.truncated(n_components)


def fit_pca(x: np.ndarray | torch.Tensor, n_components: int, whiten: bool = True) -> PcaWhitening:
    """Fit PCA(-whitening) on descriptors the OpenIBL way (dual form when ``N < D``).

    Runs on the input's device and in its floating dtype (float64 input gives float64 results).

    Args:
        x: Training descriptors ``[N, D]``, one per row (OpenIBL: 10 000 unit-norm VLADs).
        n_components: ``k``; at most ``min(D, N)`` (primal: ``D``, dual: ``N``).
        whiten: Whether :meth:`PcaWhitening.apply` whitens.

    Returns:
        The fitted :class:`PcaWhitening`, components sorted by decreasing eigenvalue.

    Raises:
        UsageError: For fewer than 2 samples, non-finite values or an impossible ``k``.
    """
    import torch

    t = _as_tensor(x, "PCA training descriptors")
    n, d = int(t.shape[0]), int(t.shape[1])
    if n < 2:
        raise UsageError(f"PCA needs at least 2 training descriptors, got {n}.")
    size = d if d <= n else n
    if not 1 <= n_components <= size:
        raise UsageError(
            f"PCA with {n} samples of dimension {d} has {size} components; "
            f"n_components={n_components} must be between 1 and {size}."
        )
    if not bool(torch.isfinite(t).all()):
        raise UsageError("PCA training descriptors contain NaN or inf values.")
    with torch.no_grad():
        mu = t.mean(dim=0)
        xc = t - mu
        primal = d <= n
        log.info(
            "Fitting %s PCA: N=%d, D=%d, k=%d", "primal" if primal else "dual", n, d, n_components
        )
        gram = (xc.T @ xc if primal else xc @ xc.T) / (n - 1)
        evals, evecs = torch.linalg.eigh(gram)
        lams = evals[-n_components:].flip(0).clamp_min(EIGENVALUE_FLOOR)
        vecs = evecs[:, -n_components:].flip(1)
        if not primal:
            vecs = (xc.T @ vecs) * (lams.rsqrt() / math.sqrt(n - 1))[None, :]
    return PcaWhitening(vecs.contiguous(), lams.contiguous(), mu.contiguous(), whiten)
