"""The ``deattention-netvlad`` model's prepare step: NetVLAD's k-means, after a size check.

The de-attention module needs a feature map of at least 4x4 (reflect padding 3), so the first
batch's map is checked here, before any run folder exists; then
:func:`vpr_bench_netvlad.prepare_netvlad` runs unchanged (reference centroids from trunk
descriptors; the de-attention centroids are the trainer's, they need the teacher's masks).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import torch

from vpr_bench_deattention.config import DeAttentionConfig
from vpr_bench_deattention.model import DeAttentionNetVLAD
from vpr_bench_deattention.modules import check_map_size
from vpr_bench_netvlad import prepare_netvlad

__all__ = ["prepare_deattention"]


def prepare_deattention(
    model: DeAttentionNetVLAD,
    config: DeAttentionConfig,
    images: Iterable[torch.Tensor],
    seed: int,
) -> None:
    """Check the map size on the first batch, then run NetVLAD's k-means initialisation.

    Raises:
        ConfigError: The feature map is under 4x4 (names the least input size), or NetVLAD's
            prepare refuses.
    """
    stream = iter(images)
    first = next(stream, None)
    if first is not None and first.ndim == 4 and model.deattention is not None:
        device = next(model.parameters()).device
        was_training = model.training
        model.eval()
        with torch.no_grad():
            feats = model.local_features(first[:1].to(device))
        model.train(was_training)
        h, w = int(feats.shape[2]), int(feats.shape[3])
        stride = max(1, round(first.shape[2] / max(h, 1)))
        check_map_size(h, w, stride, (int(first.shape[2]), int(first.shape[3])))
    rest = stream if first is None else itertools.chain([first], stream)
    prepare_netvlad(model, config, rest, seed)
