"""The NetVLAD aggregation layer and its k-means initialisation (methods.md Part A, 1.3 and 6).

Forward, for local features ``F [B, D, H, W]``:

1. ``x_i = F_i / max(||F_i||, 1e-12)`` per location (when ``normalize_input``);
2. ``a[k, i] = softmax_k(w_k . x_i (+ b_k))``, a 1x1 convolution without bias (OpenIBL) or with
   bias (pytorch-NetVlad ``vladv2``);
3. ``V[k] = sum_i a[k, i] (x_i - c_k)``, computed as ``a x^T - (sum_i a[k, i]) c_k`` so the
   ``[B, K, D, HW]`` residual tensor is never materialised.

:func:`vlad_to_descriptor` then intra-normalises each cluster row, flattens cluster-major
(``index = k * D + d``) and L2-normalises the whole vector.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["NetVLAD", "vlad_to_descriptor"]

Variant = Literal["openibl", "nanne-v2"]


def vlad_to_descriptor(vlad: torch.Tensor) -> torch.Tensor:
    """Intra-normalise ``[B, K, D]`` VLAD rows, flatten k-major and L2-normalise to ``[B, K*D]``."""
    vlad = F.normalize(vlad, p=2, dim=2)
    return F.normalize(vlad.flatten(1), p=2, dim=1)


def _as_float64(name: str, array: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(array, torch.Tensor):
        array = array.detach().cpu().numpy()
    out = np.asarray(array, dtype=np.float64)
    if out.ndim != 2:
        raise ValueError(f"NetVLAD.init_from_clusters: {name} must be 2-D, got shape {out.shape}.")
    if not np.isfinite(out).all():
        raise ValueError(f"NetVLAD.init_from_clusters: {name} contains NaN or inf values.")
    return out


class NetVLAD(nn.Module):
    """NetVLAD pooling of a local feature map into ``[B, K, D]`` residual sums.

    Args:
        num_clusters: K.
        dim: D, the channel count of the local features.
        alpha: Initial assignment sharpness (replaced by :meth:`init_from_clusters`).
        normalize_input: L2-normalise each local descriptor first (True everywhere in the
            reference code).
        variant: ``"openibl"`` (1x1 conv without bias; identical to pytorch-NetVlad ``vladv1``)
            or ``"nanne-v2"`` (1x1 conv with bias, pytorch-NetVlad ``vladv2`` initialisation).
    """

    def __init__(
        self,
        num_clusters: int = 64,
        dim: int = 512,
        alpha: float = 100.0,
        normalize_input: bool = True,
        variant: Variant = "openibl",
    ) -> None:
        super().__init__()
        if num_clusters < 1 or dim < 1:
            raise ValueError(
                f"NetVLAD needs num_clusters >= 1 and dim >= 1, got {num_clusters}, {dim}."
            )
        if variant not in ("openibl", "nanne-v2"):
            raise ValueError(f"NetVLAD variant must be 'openibl' or 'nanne-v2', not {variant!r}.")
        self.num_clusters = num_clusters
        self.dim = dim
        self.alpha = float(alpha)
        self.normalize_input = normalize_input
        self.variant: Variant = variant
        self.conv = nn.Conv2d(dim, num_clusters, kernel_size=1, bias=variant == "nanne-v2")
        self.centroids = nn.Parameter(torch.rand(num_clusters, dim))

    @property
    def output_dim(self) -> int:
        """K * D, the length of the flattened descriptor."""
        return self.num_clusters * self.dim

    def init_from_clusters(
        self, clsts: np.ndarray | torch.Tensor, traindescs: np.ndarray | torch.Tensor
    ) -> None:
        """Initialise assignment weights and centroids from k-means output.

        ``openibl``: ``c_hat = clsts / ||clsts||``; for every training descriptor take the gap
        between its two largest ``c_hat`` dot products; ``alpha = -ln(0.01) / mean gap``;
        ``conv.weight = alpha * c_hat``; ``centroids = clsts`` (raw centres).

        ``nanne-v2`` reproduces pytorch-NetVlad's ``vladv2`` exactly, including its quirk: the
        indices (not the distances) of each centre's two nearest training descriptors are
        squared, ``alpha = -ln(0.01) / mean_k(idx[k,1]^2 - idx[k,0]^2)``,
        ``conv.weight = 2 alpha clsts``, ``conv.bias = -alpha ||clsts_k||``.

        Args:
            clsts: ``[K, D]`` k-means centres of L2-normalised local descriptors.
            traindescs: ``[M, D]`` the L2-normalised local descriptors k-means was run on.

        Raises:
            ValueError: Wrong shapes, non-finite values, K < 2, or a degenerate gap.
        """
        centres = _as_float64("clsts", clsts)
        descs = _as_float64("traindescs", traindescs)
        if centres.shape != (self.num_clusters, self.dim):
            raise ValueError(
                f"NetVLAD.init_from_clusters: clsts has shape {centres.shape}, the layer needs "
                f"({self.num_clusters}, {self.dim}) (num_clusters, dim)."
            )
        if descs.shape[1] != self.dim or descs.shape[0] < 2:
            raise ValueError(
                f"NetVLAD.init_from_clusters: traindescs has shape {descs.shape}, expected "
                f"(M >= 2, {self.dim})."
            )
        if self.num_clusters < 2:
            raise ValueError("NetVLAD.init_from_clusters needs at least 2 clusters (top-2 gap).")
        bias: np.ndarray | None = None
        if self.variant == "openibl":
            norms = np.maximum(np.linalg.norm(centres, axis=1, keepdims=True), 1e-12)
            unit = centres / norms
            dots = unit @ descs.T  # [K, M]
            top2 = -np.sort(-dots, axis=0)[:2]
            gap = float(np.mean(top2[0] - top2[1]))
            if not gap > 0.0:
                raise ValueError(
                    "NetVLAD.init_from_clusters: the mean top-1/top-2 similarity gap is "
                    f"{gap}; the centres do not separate the descriptors (duplicate centres?)."
                )
            alpha = -math.log(0.01) / gap
            weight = alpha * unit
        else:
            sq_dist = (
                (centres**2).sum(1)[:, None] - 2.0 * centres @ descs.T + (descs**2).sum(1)[None, :]
            )
            knn_idx = np.argsort(sq_dist, axis=1, kind="stable")[:, :2]
            ds_sq = knn_idx.astype(np.float64) ** 2  # the reference squares indices (its bug)
            gap = float(np.mean(ds_sq[:, 1] - ds_sq[:, 0]))
            if gap == 0.0:
                raise ValueError("NetVLAD.init_from_clusters (nanne-v2): degenerate zero gap.")
            alpha = -math.log(0.01) / gap
            weight = 2.0 * alpha * centres
            bias = -alpha * np.linalg.norm(centres, axis=1)
        self.alpha = alpha
        with torch.no_grad():
            dtype, device = self.conv.weight.dtype, self.conv.weight.device
            self.conv.weight.copy_(
                torch.from_numpy(weight).to(dtype=dtype, device=device)[:, :, None, None]
            )
            if bias is not None and self.conv.bias is not None:
                self.conv.bias.copy_(torch.from_numpy(bias).to(dtype=dtype, device=device))
            self.centroids.copy_(torch.from_numpy(centres).to(dtype=dtype, device=device))

    def soft_assign(self, x: torch.Tensor) -> torch.Tensor:
        """Soft-assignment ``[B, K, H*W]`` of (already normalised) local features."""
        return F.softmax(self.conv(x).flatten(2), dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Aggregate ``[B, D, H, W]`` local features into unnormalised ``[B, K, D]`` VLAD."""
        if x.ndim != 4 or x.shape[1] != self.dim:
            raise ValueError(
                f"NetVLAD expects local features [B, {self.dim}, H, W], got {tuple(x.shape)}."
            )
        if self.normalize_input:
            x = F.normalize(x, p=2, dim=1)
        assign = self.soft_assign(x)  # [B, K, N]
        flat = x.flatten(2)  # [B, D, N]
        weighted = torch.bmm(assign, flat.transpose(1, 2))  # [B, K, D]
        return weighted - assign.sum(dim=2, keepdim=True) * self.centroids.unsqueeze(0)
