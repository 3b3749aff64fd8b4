from __future__ import annotations

from vpr_bench.plugins import PluginManager
from vpr_bench.registry import resolve


def test_trainers_losses_and_tiny_methods_fit_together() -> None:
    registries = PluginManager(autoload=False).registries()
    assert {"triplet-mining", "place-batches", "domain-pairs"} <= set(registries.trainers.names())
    for name in ("tiny-triplet", "tiny-ms", "tiny-domain"):
        method = registries.methods.get(name)
        registries.check_method(method)
        trainer = registries.trainers.get(method.trainer)
        config = resolve(trainer.config_cls)()
        assert config.epochs >= 1 and callable(resolve(trainer.fit))


def test_triplet_mining_defaults_are_openibl() -> None:
    from vpr_bench.train.tuples import TripletMiningConfig

    c = TripletMiningConfig()
    assert (c.optimizer, c.lr, c.momentum, c.weight_decay) == ("sgd", 1e-3, 0.9, 1e-3)
    assert (c.scheduler, c.step_size, c.gamma) == ("step", 5, 0.5)
    assert (c.cache_queries, c.neg_num, c.neg_pool, c.pos_radius_m, c.neg_radius_m) == (
        1000,
        10,
        1000,
        10.0,
        25.0,
    )
