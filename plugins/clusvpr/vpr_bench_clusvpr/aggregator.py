"""ClusVPR's aggregator: CWTNet blocks, then a grouped, GeM-gated VLAD (methods.md 5.2, 5.4).

For a local feature map ``F [B, D, H, W]`` (ClusVPR ``clusvpr/models/clusvpr.py:62-97``):

1. the CWTNet blocks (:mod:`vpr_bench_clusvpr.cwt`) map F to ``X`` of the same size;
2. ``x_i = X_i / ||X_i||`` per location, ``u_i = linear1(x_i)`` (no bias) split into G groups
   ``u_{g,i}`` of ``d = expansion * D / G`` channels (not re-normalised);
3. group attention ``a_{g,i} = sigmoid((mean_c max(u_{g,i,c}, 1e-6)^p_i)^(1/p_i))``, a GeM over
   the group's channels with one learnt exponent ``p_i`` per location (``GeM_pool.p``);
4. soft-assignment, shared by the groups: ``s_{g,k,i} = softmax_k(w_k . u_{g,i})``;
5. ``V_k = sum_g sum_i s_{g,k,i} a_{g,i} (u_{g,i} - c_k)``, a ``[K, d]`` VLAD;
6. the descriptor: intra-normalise, flatten k-major, L2 (8192-d for the paper's model).

Step 5 is computed as ``sum_{g,i} m_{g,k,i} u_{g,i} - (sum_{g,i} m_{g,k,i}) c_k`` with
``m = s * a``: one ``[B, K, HW] x [B, HW, d]`` product per group, summed. The reference
materialises the ``[B, G, K, d, HW]`` residual (about 300 MB per 480x640 image); nothing here
is that large (``benchmarks/results/clusvpr-aggregator-cpu.md``).

Where the published code cannot run, these are the decisions (README, "Deviations"):

* **GeM exponent map.** ``p`` has ``map_height * map_width`` entries: a map at the reference
  size. For a map of another size it is resized bilinearly (as the blocks' resize below), and
  each training patch uses its slice (the reference sizes ``p`` to the whole map and fails on
  its 10x10 patches and on any other input size, methods.md 5.9 items 2-3). Because every step
  up to 5 is per location, a patch's VLAD is the sum of its locations' terms, and the training
  regions' global VLAD is exactly the evaluation VLAD.
* **Blocks and map size.** In evaluation a map of another size passes the blocks at the
  reference size, resized there and back bilinearly without antialiasing (``clusvpr.py:65-73``,
  methods.md C-12). In training the blocks run on the map as it is (the token grid follows it),
  which therefore needs even sides.
* **Batch size 1** works (the reference's ``.squeeze()`` at ``clusvpr.py:82`` also drops the
  batch axis).

The 21 training regions (``clusvpr.py:201-264``): the map is cut into a 3x4 grid of s-patches
(index ``row * 4 + col``); 6 m-patches are the 2x2 windows of that grid, 2 l-patches its left
and right halves, and the global region all 12, each a sum of s-patch VLADs, in the order
``[global, l0, l1, m0..m5, s0..s11]``. When the map does not divide by 3 or 4, the patch
boundaries are ``floor(j * H / 3)`` and ``floor(j * W / 4)`` (the reference's ``view`` needs
exact multiples); the patches still tile the map.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vpr_bench.errors import ConfigError
from vpr_bench_clusvpr.config import GRID
from vpr_bench_clusvpr.cwt import CWTNet, autocast_off, full_precision

__all__ = [
    "REGION_COUNT",
    "REGION_NAMES",
    "ClusVPR",
    "GeMPooling",
    "grid_bounds",
    "region_sums",
]

_S = tuple(f"s{i}" for i in range(12))
REGION_NAMES = ("global", "l0", "l1", *(f"m{i}" for i in range(6)), *_S)
"""The training regions in ClusVPR's order (``clusvpr.py:263``)."""

REGION_COUNT = len(REGION_NAMES)
"""21: the whole image, 2 large, 6 medium and 12 small patches."""

M_PATCHES = ((0, 1, 4, 5), (1, 2, 5, 6), (2, 3, 6, 7), (4, 5, 8, 9), (5, 6, 9, 10), (6, 7, 10, 11))
"""The s-patches summed into each m-patch (``clusvpr.py:230-236``)."""

L_PATCHES = ((0, 1, 4, 5, 8, 9), (2, 3, 6, 7, 10, 11))
"""The s-patches summed into each l-patch: left and right half (``clusvpr.py:239-241``)."""


def grid_bounds(size: int, parts: int) -> list[int]:
    """``parts + 1`` cut positions ``floor(j * size / parts)`` splitting ``size`` cells."""
    return [(j * size) // parts for j in range(parts + 1)]


def region_sums(s_patches: torch.Tensor) -> torch.Tensor:
    """``[B, 12, ...]`` s-patch VLADs to the 21 regions ``[B, 21, ...]`` (:data:`REGION_NAMES`)."""
    if s_patches.shape[1] != 12:
        raise ValueError(f"region_sums needs 12 s-patches, got {s_patches.shape[1]}.")
    total = s_patches.sum(dim=1, keepdim=True)
    large = torch.stack([s_patches[:, list(ids)].sum(dim=1) for ids in L_PATCHES], dim=1)
    medium = torch.stack([s_patches[:, list(ids)].sum(dim=1) for ids in M_PATCHES], dim=1)
    return torch.cat([total, large, medium, s_patches], dim=1)


def resize_map(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize without antialiasing (torchvision ``Resize`` on a tensor before 0.17)."""
    if tuple(x.shape[-2:]) == size:
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=False)


class GeMPooling(nn.Module):
    """GeM over each group's channels with one exponent per location (``GeM_pool``).

    Args:
        locations: Entries of the exponent, ``map_height * map_width``.
        init: Initial exponent (3.0).
        eps: Values are clamped to at least ``eps`` before the power (1e-6).
    """

    def __init__(self, locations: int, init: float = 3.0, eps: float = 1e-6) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.full((locations,), float(init)))
        self.eps = eps

    def forward(self, groups: torch.Tensor, exponent: torch.Tensor) -> torch.Tensor:
        """``(mean_c max(u, eps)^p)^(1/p)`` of ``groups [B, G, d, N]`` with ``exponent [N]``.

        Returns:
            ``[B, G, N]``.
        """
        clamped = groups.clamp(min=self.eps)
        # Without autograd the power can overwrite the clamped copy (one [B, G, d, N] less).
        powered = clamped.pow(exponent) if torch.is_grad_enabled() else clamped.pow_(exponent)
        return powered.mean(dim=2).pow(1.0 / exponent)


class ClusVPR(nn.Module):
    """The aggregator (ClusVPR's ``ClusVPR`` module, the model's ``net_vlad``).

    Args:
        dim: D, the local feature channels.
        num_clusters: K.
        expansion: Channel expansion of ``linear1``.
        groups: G.
        map_size: ``(height, width)`` of the reference map (the GeM exponent's shape and the
            size the blocks see in evaluation); both even.
        blocks: CWTNet blocks.
        mlp_dim: Transformer MLP width.
        heads: Attention heads.
        layers: Encoder layers per block.
        knn_k: Neighbours of the clustering weight.
        dropout: Dropout of the token embeddings and the MLP.
        gem_p: Initial GeM exponent.

    Attributes:
        alpha: The soft-assignment sharpness found by :meth:`init_from_clusters` (100 before).
    """

    def __init__(
        self,
        dim: int = 512,
        num_clusters: int = 64,
        expansion: int = 2,
        groups: int = 8,
        map_size: tuple[int, int] = (30, 40),
        blocks: int = 4,
        mlp_dim: int = 512,
        heads: int = 2,
        layers: int = 1,
        knn_k: int = 10,
        dropout: float = 0.1,
        gem_p: float = 3.0,
    ) -> None:
        super().__init__()
        if (expansion * dim) % groups or dim % 2:
            raise ValueError(
                f"ClusVPR needs an even dim and expansion * dim divisible by groups, got dim "
                f"{dim}, expansion {expansion}, groups {groups}."
            )
        if map_size[0] % 2 or map_size[1] % 2:
            raise ValueError(f"ClusVPR map_size must be even, got {map_size}.")
        self.dim = dim
        self.num_clusters = num_clusters
        self.expansion = expansion
        self.groups = groups
        self.group_dim = expansion * dim // groups
        self.map_size = (int(map_size[0]), int(map_size[1]))
        self.alpha = 100.0
        # Registration order gives the reference's state-dict order (own parameter first).
        self.centroids = nn.Parameter(torch.rand(num_clusters, self.group_dim))
        self.linear1 = nn.Linear(dim, expansion * dim, bias=False)
        self.GeM_pool = GeMPooling(self.map_size[0] * self.map_size[1], init=gem_p)
        self.conv = nn.Conv2d(self.group_dim, num_clusters, kernel_size=1, bias=False)
        self.vit_layer = nn.Sequential(
            *(CWTNet(dim, mlp_dim, heads, layers, knn_k, dropout) for _ in range(blocks))
        )

    @property
    def output_dim(self) -> int:
        """``K * d``, the descriptor length (8192 for the paper's model)."""
        return self.num_clusters * self.group_dim

    # -- initialisation -----------------------------------------------------------------------
    def init_from_clusters(
        self, clsts: np.ndarray | torch.Tensor, traindescs: np.ndarray | torch.Tensor
    ) -> None:
        """Initialise ``conv`` and ``centroids`` from k-means output in the group space.

        The rule of OpenIBL's and ClusVPR's NetVLAD (``clusvpr.py:52-60``), computed by the
        NetVLAD plugin's layer: ``c^ = clsts / ||clsts||``, ``alpha = -ln(0.01) / mean`` gap
        between each descriptor's two largest ``c^`` dot products, ``conv.weight = alpha c^``,
        ``centroids = clsts``.

        Args:
            clsts: ``[K, d]`` centres.
            traindescs: ``[M, d]`` the vectors they were computed from.

        Raises:
            ValueError: Wrong shapes, non-finite values or a degenerate gap.
        """
        from vpr_bench_netvlad.layer import NetVLAD

        helper = NetVLAD(self.num_clusters, self.group_dim, normalize_input=False).double()
        helper.init_from_clusters(clsts, traindescs)
        self.alpha = helper.alpha
        with torch.no_grad():
            self.conv.weight.copy_(helper.conv.weight)
            self.centroids.copy_(helper.centroids)

    # -- the blocks -----------------------------------------------------------------------------
    def run_blocks(self, features: torch.Tensor) -> torch.Tensor:
        """The CWTNet blocks on ``[B, D, H, W]`` (see the module docstring for the map size).

        Raises:
            ConfigError: Training on a map with an odd side.
        """
        size = (int(features.shape[2]), int(features.shape[3]))
        if not len(self.vit_layer):
            return features
        if self.training:
            if size[0] % 2 or size[1] % 2:
                raise ConfigError(
                    f"ClusVPR cannot train on a {size[0]}x{size[1]} feature map: the CWT blocks "
                    "pool it 2x2 and upsample it back, so both sides must be even; change the "
                    "training image size (trainer.height, trainer.width)."
                )
            return self.vit_layer(features)  # type: ignore[no-any-return]
        if size == self.map_size:
            return self.vit_layer(features)  # type: ignore[no-any-return]
        return resize_map(self.vit_layer(resize_map(features, self.map_size)), size)

    # -- per-location terms -------------------------------------------------------------------
    def exponent(self, height: int, width: int) -> torch.Tensor:
        """The GeM exponent ``[height * width]`` of a map: ``p`` itself at the reference size,
        else ``p`` seen as a map and resized bilinearly (no antialiasing)."""
        p = self.GeM_pool.p
        if (height, width) == self.map_size:
            return p
        grid = p.view(1, 1, *self.map_size)
        return resize_map(grid, (height, width)).reshape(height * width)

    def group_vectors(self, blocked: torch.Tensor) -> torch.Tensor:
        """``u``: ``[B, G, d, H*W]`` from the blocks' output ``[B, D, H, W]``."""
        x = F.normalize(full_precision(blocked), p=2, dim=1).flatten(2)  # [B, D, N]
        u = torch.matmul(self.linear1.weight.to(x.dtype), x)  # [B, G*d, N]
        return u.unflatten(1, (self.groups, self.group_dim))  # type: ignore[no-any-return]

    def gem(self, groups: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """The GeM of every group and location, before the sigmoid: ``[B, G, H*W]``."""
        exponent = self.exponent(height, width).to(groups.dtype)
        return self.GeM_pool(groups, exponent)  # type: ignore[no-any-return]

    def masses(self, groups: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """``m_{g,k,i} = softmax_k(w_k . u_{g,i}) * sigmoid(gem_{g,i})``: ``[B, G, K, H*W]``."""
        attention = torch.sigmoid(self.gem(groups, height, width)).unsqueeze(2)
        weight = self.conv.weight[:, :, 0, 0].to(groups.dtype)
        assign = torch.softmax(torch.matmul(weight, groups), dim=2)  # [B, G, K, N]
        # softmax keeps its output for its backward: in place only without autograd
        return assign * attention if torch.is_grad_enabled() else assign.mul_(attention)

    def _vlad(self, masses: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
        """``sum_{g,i} m (u - c)`` over the given locations: ``[B, K, d]``.

        One ``[B, K, N] x [B, N, d]`` product per group, accumulated (no transposed copies).
        """
        vlad = torch.bmm(masses[:, 0], groups[:, 0].transpose(1, 2))
        for g in range(1, masses.shape[1]):
            vlad = vlad.baddbmm_(masses[:, g], groups[:, g].transpose(1, 2))
        mass = masses.sum(dim=(1, 3)).unsqueeze(2)  # [B, K, 1]
        return vlad - mass * self.centroids.to(vlad.dtype).unsqueeze(0)

    # -- outputs --------------------------------------------------------------------------------
    def _terms(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(masses [B, G, K, H*W], groups [B, G, d, H*W])`` of a local feature map.

        The blocks run under the caller's autocast; everything after them in float32 at least.
        """
        if features.ndim != 4 or features.shape[1] != self.dim:
            raise ValueError(
                f"ClusVPR expects local features [B, {self.dim}, H, W], "
                f"got {tuple(features.shape)}."
            )
        blocked = self.run_blocks(features)
        height, width = int(blocked.shape[2]), int(blocked.shape[3])
        with autocast_off(blocked.device.type):
            groups = self.group_vectors(blocked)
            return self.masses(groups, height, width), groups

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Unnormalised VLAD ``[B, K, d]`` of the whole map (blocks included)."""
        masses, groups = self._terms(features)
        with autocast_off(masses.device.type):
            return self._vlad(masses, groups)

    def patch_vlads(self, features: torch.Tensor) -> torch.Tensor:
        """Unnormalised VLADs of the 12 s-patches of the 3x4 grid: ``[B, 12, K, d]``.

        The blocks run on the whole map first (as in training, ``clusvpr.py:298``).

        Raises:
            ConfigError: The map has fewer than 3 rows or 4 columns (or, in training, an odd
                side).
        """
        rows, cols = GRID
        height, width = int(features.shape[2]), int(features.shape[3])
        if height < rows or width < cols:
            raise ConfigError(
                f"a {height}x{width} feature map cannot be cut into the {rows}x{cols} grid of "
                "s-patches; use larger images."
            )
        masses, groups = self._terms(features)
        masses = masses.unflatten(3, (height, width))
        groups = groups.unflatten(3, (height, width))
        row_cuts, col_cuts = grid_bounds(height, rows), grid_bounds(width, cols)
        patches = []
        with autocast_off(masses.device.type):
            for r in range(rows):
                for c in range(cols):
                    rs = slice(row_cuts[r], row_cuts[r + 1])
                    cs = slice(col_cuts[c], col_cuts[c + 1])
                    patches.append(
                        self._vlad(
                            masses[:, :, :, rs, cs].flatten(3), groups[:, :, :, rs, cs].flatten(3)
                        )
                    )
        return torch.stack(patches, dim=1)

    def region_vlads(self, features: torch.Tensor) -> torch.Tensor:
        """Unnormalised VLADs of the 21 regions ``[B, 21, K, d]`` (:data:`REGION_NAMES`)."""
        return region_sums(self.patch_vlads(features))
