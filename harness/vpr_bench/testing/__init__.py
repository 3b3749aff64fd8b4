"""The conformance kit for plugin authors.

Installing vpr-bench registers a pytest plugin (:mod:`vpr_bench.testing.plugin`) that adds the
``slow`` and ``gpu`` markers and the fixtures below. Subclass the base classes in
:mod:`vpr_bench.testing.conformance` to test a component in three lines::

    from vpr_bench.testing import ModelConformance

    class TestMyModel(ModelConformance):
        plugins = ("my_plugin.plugin",)
        model_name = "my-model"

Also here: :func:`isolated_manager` (a plugin manager with the built-ins and the given plugin
modules only, no entry points) and :func:`prepare_synthcity` (generate the procedural city a
plugin's end-to-end tests train and evaluate on; ``size="tiny"`` takes seconds)::

    from vpr_bench.testing import prepare_synthcity

    city = prepare_synthcity(tmp_path, "tiny", seed=0, progress=False)
    # vpr-bench run ... --dataset synthcity --data-root {city} --train-root {city}

For multi-process training tests: :func:`free_port`, :func:`set_rank_env` and
:func:`train_on_rank` (:mod:`vpr_bench.testing.ddp`).
"""

from vpr_bench.data.synthcity import prepare as prepare_synthcity
from vpr_bench.testing.conformance import LossConformance, ModelConformance
from vpr_bench.testing.ddp import free_port, set_rank_env, train_on_rank
from vpr_bench.testing.isolation import isolated_manager

__all__ = [
    "LossConformance",
    "ModelConformance",
    "free_port",
    "isolated_manager",
    "prepare_synthcity",
    "set_rank_env",
    "train_on_rank",
]
