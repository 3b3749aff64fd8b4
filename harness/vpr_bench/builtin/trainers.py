"""Built-in trainers: triplet mining, region generations, place batches, domain pairs."""

from __future__ import annotations

from collections.abc import Iterator

from vpr_bench.hookspecs import hookimpl
from vpr_bench.specs import BatchKind, TrainerSpec

_TRAIN = "vpr_bench.train"


@hookimpl
def vpr_bench_trainers() -> Iterator[TrainerSpec]:
    """Register ``triplet-mining``, ``region-generations``, ``place-batches``, ``domain-pairs``."""
    yield TrainerSpec(
        name="triplet-mining",
        fit=f"{_TRAIN}.tuples:fit",
        batch_kinds=(BatchKind.TUPLES,),
        config_cls=f"{_TRAIN}.tuples:TripletMiningConfig",
        summary="OpenIBL cache-refresh loop: hardest of 1000 random negatives beyond 25 m, "
        "nearest positive within 10 m",
    )
    yield TrainerSpec(
        name="region-generations",
        fit=f"{_TRAIN}.generations:fit",
        batch_kinds=(BatchKind.REGION_TUPLES,),
        config_cls=f"{_TRAIN}.generations:RegionGenerationsConfig",
        summary="SFRS generations: teacher region similarities as soft labels, difficult "
        "positives by k-reciprocal re-ranking (OpenIBL netvlad_img_sfrs)",
    )
    yield TrainerSpec(
        name="place-batches",
        fit=f"{_TRAIN}.places:fit",
        batch_kinds=(BatchKind.PLACES,),
        config_cls=f"{_TRAIN}.places:PlaceBatchesConfig",
        summary="P places x K views per batch, in-batch mining (multi-similarity style losses)",
    )
    yield TrainerSpec(
        name="domain-pairs",
        fit=f"{_TRAIN}.domain_pairs:fit",
        batch_kinds=(BatchKind.DOMAIN_PAIRS,),
        config_cls=f"{_TRAIN}.domain_pairs:DomainPairsConfig",
        summary="Batches of the same places rendered in two domains (day/night)",
    )
