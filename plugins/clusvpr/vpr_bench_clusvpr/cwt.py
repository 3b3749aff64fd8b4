"""The CWTNet block: depthwise convolutions beside a clustering-weighted transformer.

methods.md Part A 5.3; ClusVPR ``clusvpr/models/clusvpr.py:100-139`` (the block) and
``clusvpr/models/cwt.py`` (the transformer). A block splits its D input channels in two halves
``x_L`` and ``x_G`` and returns

    cat( ReLU(BN_L(DW_l(x_L) + DW_gl(x_G))), ReLU(BN_L(DW_lg(x_L) + x_G + T(x_G))) )

with depthwise 3x3 convolutions ``DW_*`` and ``T`` the transformer branch: average-pool 2x2, a
1x1 convolution into D/2-wide tokens, a learnt class token in front, encoder layers without
LayerNorm or position embedding, then the class token dropped, the tokens put back on the pooled
grid, a depthwise 2x2 transposed convolution (stride 2) and a 1x1 convolution. Both halves go
through the same BatchNorm, ``local_bn`` (``clusvpr.py:136-137``); ``global_bn`` is never used
but is kept, frozen, so checkpoints of the original code load strictly.

The attention re-weights each token's value by how isolated the token is among all tokens of
its image (class token included), measured without gradient: the sum of squared distances to
its k nearest tokens and itself, min-max normalised (``cwt.py:72-84``). Here the neighbours come
from ``torch.cdist`` + ``topk`` (the reference needs the external KNN_CUDA), and the transformer
branch's result is added out of place (the reference's ``x += ...`` at ``cwt.py:285`` overwrites
its input and breaks the backward pass).

State-dict names are the reference's (``transformer.embeddings.cls_token``,
``transformer.encoder.layer.0.attn.query.weight``, ...), registered in its order.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "Attention",
    "CWTNet",
    "CWTransformer",
    "autocast_off",
    "cluster_value_scale",
    "full_precision",
]


def full_precision(x: torch.Tensor) -> torch.Tensor:
    """``x`` in float32 when it is half or bfloat16 (under autocast), else unchanged."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


@contextlib.contextmanager
def autocast_off(device_type: str) -> Iterator[None]:
    """Leave autocast for the block (when it is on for ``device_type``): GeM and VLAD sums, and
    the clustering weights, stay in float32 under mixed precision."""
    if torch.is_autocast_enabled(device_type):
        with torch.autocast(device_type, enabled=False):
            yield
    else:
        yield


def cluster_value_scale(tokens: torch.Tensor, k: int) -> torch.Tensor:
    """The factor ``0.5 + w`` each token's value is multiplied by (``cwt.py:72-84``).

    For every token i of an image: ``d_i`` = the sum of squared Euclidean distances to its
    ``k + 1`` nearest tokens (itself included, at distance 0), ``d^_i`` = ``d_i`` min-max
    normalised over the image's tokens, ``rho_i = exp(-d^_i / k)``, ``w'_i = (1 - rho_i) /
    sum_j (1 - rho_j)`` and ``w_i`` = ``w'_i`` min-max normalised, in [0, 1]. Isolated tokens are
    scaled by up to 1.5, those in dense clusters by down to 0.5.

    Computed without gradient, in float32 at least. The neighbour count is capped at the token
    count (the reference's KNN fails with fewer than ``k + 1`` tokens), and a denominator that is
    exactly 0 (all tokens alike) gives ``w = 0`` instead of the reference's NaN.

    Args:
        tokens: ``[B, N, C]`` token embeddings (the encoder layer's input).
        k: Neighbours besides the token itself (ClusVPR: 10).

    Returns:
        ``[B, N]``, in the dtype of ``tokens`` promoted to at least float32.
    """
    with torch.no_grad(), autocast_off(tokens.device.type):
        points = full_precision(tokens.detach())
        count = min(k + 1, points.shape[1])
        distance = torch.cdist(points, points)  # [B, N, N]
        nearest = distance.topk(count, dim=2, largest=False).values
        density = nearest.pow(2).sum(dim=2)  # [B, N]
        tiny = torch.finfo(density.dtype).tiny
        low = density.min(dim=1, keepdim=True).values
        spread = (density.max(dim=1, keepdim=True).values - low).clamp_min(tiny)
        rho = torch.exp(-((density - low) / spread) / max(k, 1))
        weight = (1 - rho) / (1 - rho).sum(dim=1, keepdim=True).clamp_min(tiny)
        low = weight.min(dim=1, keepdim=True).values
        spread = (weight.max(dim=1, keepdim=True).values - low).clamp_min(tiny)
        return 0.5 + (weight - low) / spread


class Attention(nn.Module):
    """Multi-head self-attention whose values are re-weighted by :func:`cluster_value_scale`.

    Args:
        hidden: Token width.
        heads: Heads (they split ``hidden`` evenly).
        k: Neighbours of the clustering weight.
    """

    def __init__(self, hidden: int, heads: int, k: int) -> None:
        super().__init__()
        self.heads = heads
        self.head_dim = hidden // heads
        self.k = k
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, hidden)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(-1, (self.heads, self.head_dim)).transpose(1, 2)  # type: ignore[no-any-return]

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """``[B, N, C] -> [B, N, C]`` (the output projection, before the residual add)."""
        query, key = self._split(self.query(tokens)), self._split(self.key(tokens))
        value = self.value(tokens) * cluster_value_scale(tokens, self.k).unsqueeze(-1)
        value = self._split(value.to(query.dtype))
        scores = query @ key.transpose(-1, -2) / math.sqrt(self.head_dim)
        context = torch.softmax(scores, dim=-1) @ value  # attention dropout: 0 in the reference
        return self.out(context.transpose(1, 2).flatten(2))  # type: ignore[no-any-return]


class Mlp(nn.Module):
    """``fc2(dropout(GELU(fc1(x))))`` then dropout; xavier weights, N(0, 1e-6) biases."""

    def __init__(self, hidden: int, mlp_dim: int, dropout: float) -> None:
        super().__init__()
        self.fc1 = nn.Linear(hidden, mlp_dim)
        self.fc2 = nn.Linear(mlp_dim, hidden)
        self.dropout = nn.Dropout(dropout)
        nn.init.xavier_uniform_(self.fc1.weight)
        nn.init.xavier_uniform_(self.fc2.weight)
        nn.init.normal_(self.fc1.bias, std=1e-6)
        nn.init.normal_(self.fc2.bias, std=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the MLP to ``[..., hidden]``."""
        return self.dropout(self.fc2(self.dropout(F.gelu(self.fc1(x)))))  # type: ignore[no-any-return]


class Block(nn.Module):
    """One encoder layer without LayerNorm: ``x + attn(x)``, then ``+ ffn(.)``."""

    def __init__(self, hidden: int, mlp_dim: int, heads: int, k: int, dropout: float) -> None:
        super().__init__()
        self.ffn = Mlp(hidden, mlp_dim, dropout)
        self.attn = Attention(hidden, heads, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, N, C] -> [B, N, C]``."""
        x = x + self.attn(x)
        return x + self.ffn(x)  # type: ignore[no-any-return]


class Encoder(nn.Module):
    """``layers`` encoder layers in sequence (names ``layer.0``, ...)."""

    def __init__(self, hidden: int, mlp_dim: int, heads: int, layers: int, k: int, dropout: float):
        super().__init__()
        self.layer = nn.ModuleList(Block(hidden, mlp_dim, heads, k, dropout) for _ in range(layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, N, C] -> [B, N, C]``."""
        for block in self.layer:
            x = block(x)
        return x


class Embeddings(nn.Module):
    """1x1 convolution of the pooled map into tokens, a zero-initialised class token in front."""

    def __init__(self, hidden: int, dropout: float) -> None:
        super().__init__()
        self.patch_embeddings = nn.Conv2d(hidden, hidden, kernel_size=1)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, hidden))
        self.dropout = nn.Dropout(dropout)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        """``[B, C, h, w] -> [B, 1 + h*w, C]`` (tokens row-major after the class token)."""
        tokens = self.patch_embeddings(pooled).flatten(2).transpose(1, 2)
        cls = self.cls_token.expand(tokens.shape[0], -1, -1).to(tokens.dtype)
        return self.dropout(torch.cat([cls, tokens], dim=1))  # type: ignore[no-any-return]


class Transformer(nn.Module):
    """Embeddings, then the encoder."""

    def __init__(self, hidden: int, mlp_dim: int, heads: int, layers: int, k: int, dropout: float):
        super().__init__()
        self.embeddings = Embeddings(hidden, dropout)
        self.encoder = Encoder(hidden, mlp_dim, heads, layers, k, dropout)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        """``[B, C, h, w] -> [B, 1 + h*w, C]``."""
        return self.encoder(self.embeddings(pooled))  # type: ignore[no-any-return]


class CWTransformer(nn.Module):
    """The transformer branch of a block: ``x_G -> x_G + point_conv(transpose(tokens))``.

    The token grid is the pooled input's (half its height and width), so any even map works;
    the caller decides the map size (see :class:`~vpr_bench_clusvpr.aggregator.ClusVPR`).

    Args:
        hidden: Channels of ``x_G`` and token width (D/2).
        mlp_dim: MLP width.
        heads: Attention heads.
        layers: Encoder layers.
        k: Neighbours of the clustering weight.
        dropout: Dropout of the embeddings and the MLP.
    """

    sample_rate = 2
    """The pooling (and transposed-convolution) factor (``configs.py:17``)."""

    def __init__(
        self, hidden: int, mlp_dim: int, heads: int, layers: int, k: int, dropout: float
    ) -> None:
        super().__init__()
        rate = self.sample_rate
        self.transformer = Transformer(hidden, mlp_dim, heads, layers, k, dropout)
        self.transpose = nn.ConvTranspose2d(
            hidden, hidden, kernel_size=rate, stride=rate, groups=hidden, bias=False
        )
        self.point_conv = nn.Conv2d(hidden, hidden, kernel_size=1, bias=False)

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """The encoder's input for ``x`` ``[B, C, H, W]``: ``[B, 1 + HW/4, C]``."""
        return self.transformer.embeddings(F.avg_pool2d(x, self.sample_rate))  # type: ignore[no-any-return]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, H, W] -> [B, C, H, W]`` with H and W even; ``x`` itself is not modified."""
        pooled = F.avg_pool2d(x, self.sample_rate)
        encoded = self.transformer(pooled)[:, 1:]  # drop the class token
        grid = encoded.transpose(1, 2).unflatten(2, pooled.shape[2:])
        return x + self.point_conv(self.transpose(grid))  # type: ignore[no-any-return]


class CWTNet(nn.Module):
    """One block (see the module docstring): ``[B, D, H, W] -> [B, D, H, W]``, H and W even.

    Args:
        dim: D, the local feature channels (even).
        mlp_dim: Transformer MLP width.
        heads: Attention heads.
        layers: Encoder layers.
        k: Neighbours of the clustering weight.
        dropout: Dropout of the embeddings and the MLP.
    """

    def __init__(
        self,
        dim: int,
        mlp_dim: int = 512,
        heads: int = 2,
        layers: int = 1,
        k: int = 10,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        half = dim // 2
        self.branch_dim = half
        self.local_dwconvl = nn.Conv2d(half, half, 3, padding=1, groups=half, bias=False)
        self.local_dwconvg = nn.Conv2d(half, half, 3, padding=1, groups=half, bias=False)
        self.global_dwconv = nn.Conv2d(half, half, 3, padding=1, groups=half, bias=False)
        self.global_cwt = CWTransformer(half, mlp_dim, heads, layers, k, dropout)
        self.local_bn = nn.BatchNorm2d(half)
        self.global_bn = nn.BatchNorm2d(half)
        for parameter in self.global_bn.parameters():
            parameter.requires_grad_(False)  # never used: DDP must not wait for its gradient

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block; ``x`` is left unchanged."""
        x_local, x_global = x[:, : self.branch_dim], x[:, self.branch_dim :]
        local = self.local_dwconvl(x_local) + self.global_dwconv(x_global)
        global_ = self.local_dwconvg(x_local) + self.global_cwt(x_global)
        return torch.cat([F.relu(self.local_bn(local)), F.relu(self.local_bn(global_))], dim=1)
