"""The conformance kit for plugin authors.

Installing vpr-bench registers a pytest plugin (:mod:`vpr_bench.testing.plugin`) that adds the
``slow`` and ``gpu`` markers and the fixtures below. Subclass the base classes in
:mod:`vpr_bench.testing.conformance` to test a component in three lines::

    from vpr_bench.testing import ModelConformance

    class TestMyModel(ModelConformance):
        plugins = ("my_plugin.plugin",)
        model_name = "my-model"
"""

from vpr_bench.testing.conformance import LossConformance, ModelConformance
from vpr_bench.testing.isolation import isolated_manager

__all__ = ["LossConformance", "ModelConformance", "isolated_manager"]
