"""vpr-bench hooks of the DaCo plugin.

Losses ``daco``, ``simclr``, ``simsiam``, ``moco`` and ``npid`` (batch kind ``domain-views``).
Pure data: heavy objects are lazy ``"pkg.mod:obj"`` targets, so listing does not import torch.
"""

from __future__ import annotations

from collections.abc import Iterator

from vpr_bench import BatchKind, LossSpec, hookimpl

__all__ = ["vpr_bench_losses"]

_LOSSES = "vpr_bench_daco.losses"


@hookimpl
def vpr_bench_losses() -> Iterator[LossSpec]:
    """Register ``daco``, ``simclr``, ``simsiam``, ``moco`` and ``npid``."""
    for name, cls, summary in (
        (
            "daco",
            "DaCoLoss",
            "DaCo: NT-Xent within two views of an image and of its GAN translation, plus "
            "0.8 x NT-Xent across (views o1, o2, g1, g2)",
        ),
        ("simclr", "SimCLRLoss", "SimCLR NT-Xent on two views of the original (DaCo baseline)"),
        (
            "simsiam",
            "SimSiamLoss",
            "SimSiam negative cosine, stop-gradient on the features (DaCo baseline)",
        ),
        (
            "moco",
            "MoCoLoss",
            "MoCo InfoNCE with a momentum key encoder and a 4096-key queue (DaCo baseline)",
        ),
        (
            "npid",
            "NPIDLoss",
            "NPID NCE against a memory bank of every item, 4096 negatives (DaCo baseline)",
        ),
    ):
        config = "DaCoLossConfig" if name == "daco" else cls.replace("Loss", "Config")
        yield LossSpec(
            name=name,
            build=f"{_LOSSES}:{cls}",
            config_cls=f"{_LOSSES}:{config}",
            batch_kind=BatchKind.DOMAIN_VIEWS,
            summary=summary,
        )
