"""vpr-bench: a plugin-based benchmark harness for visual place recognition.

The curated public API for plugin authors lives here; everything else is internal.
"""

from __future__ import annotations

from vpr_bench.errors import (
    ConfigError,
    DataError,
    IncompatibleError,
    PluginConflictError,
    PluginError,
    RecordError,
    UnknownNameError,
    UsageError,
    VprBenchError,
)
from vpr_bench.experiment import ExperimentConfig, resolve_experiment
from vpr_bench.hookspecs import hookimpl, hookspec
from vpr_bench.protocol import EvalProtocol, ResizePolicy
from vpr_bench.ranges import bounded, check_ranges
from vpr_bench.registry import Registries, resolve
from vpr_bench.runtime import RetrievalResult, RunEvent
from vpr_bench.specs import (
    IMAGENET,
    MATCONVNET,
    BatchKind,
    Checkpoint,
    DatasetSpec,
    EvaluatorSpec,
    LossSpec,
    MethodSpec,
    MetricSpec,
    ModelSpec,
    PaperResult,
    Preprocess,
    RemoteFile,
    TrainerSpec,
)

__version__ = "0.1.0"

__all__ = [
    "IMAGENET",
    "MATCONVNET",
    "BatchKind",
    "Checkpoint",
    "ConfigError",
    "DataError",
    "DatasetSpec",
    "EvalProtocol",
    "EvaluatorSpec",
    "ExperimentConfig",
    "IncompatibleError",
    "LossSpec",
    "MethodSpec",
    "MetricSpec",
    "ModelSpec",
    "PaperResult",
    "PluginConflictError",
    "PluginError",
    "Preprocess",
    "RecordError",
    "Registries",
    "RemoteFile",
    "ResizePolicy",
    "RetrievalResult",
    "RunEvent",
    "TrainerSpec",
    "UnknownNameError",
    "UsageError",
    "VprBenchError",
    "__version__",
    "bounded",
    "check_ranges",
    "get_registries",
    "hookimpl",
    "hookspec",
    "resolve",
    "resolve_experiment",
]


def get_registries(plugins: str | None = None) -> Registries:
    """Load plugins (built-ins + entry points) and return the component registries.

    Args:
        plugins: Optional comma-separated allow-list of entry-point plugin names.

    Returns:
        The :class:`vpr_bench.registry.Registries` of every loaded component.
    """
    from vpr_bench.plugins import PluginManager, parse_plugin_list

    return PluginManager(allow=parse_plugin_list(plugins)).registries()
