"""Built-in losses: the triplet margin loss of NetVLAD/OpenIBL."""

from __future__ import annotations

from collections.abc import Iterator

from vpr_bench.hookspecs import hookimpl
from vpr_bench.specs import BatchKind, LossSpec


@hookimpl
def vpr_bench_losses() -> Iterator[LossSpec]:
    """Register ``triplet``."""
    yield LossSpec(
        name="triplet",
        build="vpr_bench.builtin.triplet:TripletLoss",
        config_cls="vpr_bench.builtin.triplet:TripletConfig",
        batch_kind=BatchKind.TUPLES,
        summary="Triplet margin loss on L2 distance, margin sqrt(0.1) (NetVLAD / OpenIBL)",
    )
