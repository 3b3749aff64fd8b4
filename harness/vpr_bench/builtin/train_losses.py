"""Built-in losses of the place-batch and domain-pair paradigms."""

from __future__ import annotations

from collections.abc import Iterator

from vpr_bench.hookspecs import hookimpl
from vpr_bench.specs import BatchKind, LossSpec

_MOD = "vpr_bench.train.losses_ms"


@hookimpl
def vpr_bench_losses() -> Iterator[LossSpec]:
    """Register ``multi-similarity`` and ``domain-infonce``."""
    yield LossSpec(
        name="multi-similarity",
        build=f"{_MOD}:MultiSimilarityLoss",
        config_cls=f"{_MOD}:MultiSimilarityConfig",
        batch_kind=BatchKind.PLACES,
        summary="Multi-similarity loss with its pair mining (Wang et al., CVPR 2019)",
    )
    yield LossSpec(
        name="domain-infonce",
        build=f"{_MOD}:DomainInfoNCE",
        config_cls=f"{_MOD}:DomainInfoNCEConfig",
        batch_kind=BatchKind.DOMAIN_PAIRS,
        summary="Symmetric cross-domain InfoNCE over paired renders",
    )
