"""Registries of components: normalised names, lazy targets, did-you-mean, compatibility.

A :class:`Registry` holds one kind of spec (models, losses, ...) with the plugin and
distribution that provided each. :class:`Registries` bundles one per kind and answers the
questions that cross kinds: which dataset split a ``--dataset`` name means, which protocols
exist, and whether a method's parts fit together (checked before any heavy work).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from vpr_bench.errors import IncompatibleError, PluginConflictError, PluginError, UnknownNameError
from vpr_bench.protocol import EvalProtocol
from vpr_bench.specs import (
    BatchKind,
    DatasetSpec,
    EvaluatorSpec,
    LossSpec,
    MethodSpec,
    ModelSpec,
    TrainerSpec,
    normalize_name,
)

__all__ = ["Entry", "Registries", "Registry", "resolve"]

T = TypeVar("T")

_resolved: dict[str, Any] = {}


def resolve(target: Any) -> Any:
    """Return ``target`` itself, or import it when it is a lazy ``"pkg.mod:obj"`` string.

    Args:
        target: A callable/class, or a string ``"package.module:attribute[.attribute]"``.

    Returns:
        The object; resolved strings are cached.

    Raises:
        PluginError: The module cannot be imported or has no such attribute.
    """
    if not isinstance(target, str):
        return target
    if target in _resolved:
        return _resolved[target]
    module_name, _, attr_path = target.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise PluginError(
            f"Cannot import {module_name!r} for lazy target {target!r}: {exc}. "
            "Is the plugin that provides it installed in this environment?"
        ) from exc
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            raise PluginError(
                f"Lazy target {target!r}: module {module_name!r} has no attribute {attr_path!r}."
            ) from exc
    _resolved[target] = obj
    return obj


@dataclass(frozen=True)
class Entry(Generic[T]):
    """A registered spec and where it came from."""

    spec: T
    plugin: str
    distribution: str


class Registry(Generic[T]):
    """Specs of one kind, by normalised name.

    Args:
        kind: Singular noun used in messages, e.g. ``"model"``.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def add(self, name: str, spec: T, plugin: str, distribution: str) -> None:
        """Register ``spec`` under ``name``.

        Raises:
            PluginConflictError: Another plugin already registered that name.
        """
        key = normalize_name(name)
        previous = self._entries.get(key)
        if previous is not None:
            raise PluginConflictError(
                f"The {self.kind} name {key!r} is offered twice: by plugin {previous.plugin!r} "
                f"(distribution {previous.distribution}) and by plugin {plugin!r} (distribution "
                f"{distribution}). Uninstall one, or block one with -p no:<plugin>."
            )
        self._entries[key] = Entry(spec, plugin, distribution)

    def entry(self, name: str) -> Entry[T]:
        """The entry for ``name`` (normalised), with its provenance.

        Raises:
            UnknownNameError: Nothing provides ``name``; the message suggests close names.
        """
        key = normalize_name(name)
        try:
            return self._entries[key]
        except KeyError:
            raise UnknownNameError(
                self.kind, name, self._entries, hint=f"See: vpr-bench list {self.kind}s."
            ) from None

    def get(self, name: str) -> T:
        """The spec registered under ``name`` (normalised); see :meth:`entry`."""
        return self.entry(name).spec

    def names(self) -> list[str]:
        """All registered names, sorted."""
        return sorted(self._entries)

    def entries(self) -> list[Entry[T]]:
        """All entries, sorted by name."""
        return [self._entries[name] for name in self.names()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and normalize_name(name) in self._entries

    def __iter__(self) -> Iterator[T]:
        return (entry.spec for entry in self.entries())

    def __len__(self) -> int:
        return len(self._entries)


class Registries:
    """One registry per component kind, plus questions that cross kinds."""

    def __init__(self) -> None:
        self.models: Registry[ModelSpec] = Registry("model")
        self.losses: Registry[LossSpec] = Registry("loss")
        self.datasets: Registry[DatasetSpec] = Registry("dataset")
        self.evaluators: Registry[EvaluatorSpec] = Registry("evaluator")
        self.trainers: Registry[TrainerSpec] = Registry("trainer")
        self.methods: Registry[MethodSpec] = Registry("method")

    def by_kind(self, kind: str) -> Registry[Any]:
        """The registry for a plural kind name (``"models"``, ``"losses"``, ...)."""
        registry = getattr(self, kind, None)
        if not isinstance(registry, Registry):
            raise UnknownNameError("component kind", kind, self.kinds())
        return registry

    @staticmethod
    def kinds() -> list[str]:
        """The plural kind names."""
        return ["models", "losses", "datasets", "evaluators", "trainers", "methods"]

    def protocols(self) -> dict[str, tuple[EvalProtocol, DatasetSpec]]:
        """Every protocol declared by a dataset, by name, with its dataset."""
        found: dict[str, tuple[EvalProtocol, DatasetSpec]] = {}
        for dataset in self.datasets:
            for protocol in dataset.protocols:
                if protocol.name in found and found[protocol.name][0] != protocol:
                    other = found[protocol.name][1].name
                    raise PluginConflictError(
                        f"Protocol {protocol.name!r} is declared differently by datasets "
                        f"{other!r} and {dataset.name!r}; give one of them another name."
                    )
                found[protocol.name] = (protocol, dataset)
        return found

    def dataset_split(self, name: str) -> tuple[DatasetSpec, str]:
        """Resolve a ``--dataset`` name to (dataset spec, split).

        ``pitts30k-test`` -> (pitts30k, "test"); ``tokyo247`` -> (tokyo247, its default split);
        a protocol name (``tokyo247-vg``) -> its dataset and split.

        Raises:
            UnknownNameError: No dataset, dataset-split or protocol has that name.
        """
        key = normalize_name(name)
        if key in self.datasets:
            spec = self.datasets.get(key)
            return spec, spec.default_split
        for spec in self.datasets:
            for split in spec.splits:
                if key == f"{spec.name}-{split}":
                    return spec, split
        protocols = self.protocols()
        if key in protocols:
            protocol, spec = protocols[key]
            return spec, protocol.split
        known = set(self.datasets.names()) | set(protocols)
        known |= {f"{spec.name}-{split}" for spec in self.datasets for split in spec.splits}
        raise UnknownNameError("dataset", name, known, hint="See: vpr-bench list datasets.")

    def check_method(self, method: MethodSpec, train_dataset: str | None = None) -> None:
        """Check that a method's model, loss, trainer and training data fit together.

        Runs before any heavy work (no import of torch).

        Raises:
            UnknownNameError: A part is not registered.
            IncompatibleError: The loss's batch kind is not produced by the trainer, or the
                dataset cannot provide it; the message says what would fit.
        """
        model = self.models.get(method.model)
        loss = self.losses.get(method.loss)
        trainer = self.trainers.get(method.trainer)
        if loss.batch_kind not in trainer.batch_kinds:
            fitting = [t.name for t in self.trainers if loss.batch_kind in t.batch_kinds]
            raise IncompatibleError(
                f"Method {method.name!r}: loss {loss.name!r} needs {loss.batch_kind.value} batches "
                f"but trainer {trainer.name!r} produces "
                f"{', '.join(k.value for k in trainer.batch_kinds)}. Trainers that fit: "
                f"{', '.join(fitting) or 'none registered'}."
            )
        if loss.batch_kind is BatchKind.REGION_TUPLES and model.regions < 2:
            fitting = [m.name for m in self.models if m.regions >= 2]
            raise IncompatibleError(
                f"Method {method.name!r}: loss {loss.name!r} trains on region descriptors but "
                f"model {model.name!r} declares none (ModelSpec.regions = {model.regions}). "
                f"Models with regions: {', '.join(fitting) or 'none registered'}."
            )
        dataset, split = self.dataset_split(train_dataset or method.train_dataset)
        paired = (BatchKind.DOMAIN_PAIRS, BatchKind.DOMAIN_VIEWS)
        if loss.batch_kind in paired and "domain-pairs" not in dataset.provides:
            fitting = [d.name for d in self.datasets if "domain-pairs" in d.provides]
            raise IncompatibleError(
                f"Method {method.name!r} trains on domain pairs but dataset {dataset.name!r} has "
                f"no paired renders. Datasets that fit: {', '.join(fitting) or 'none registered'}."
            )
        if "train" not in dataset.provides:
            fitting = [d.name for d in self.datasets if "train" in d.provides]
            raise IncompatibleError(
                f"Method {method.name!r} cannot train on dataset {dataset.name!r} "
                f"(split {split!r}): it provides no training data. Datasets with training splits: "
                f"{', '.join(fitting) or 'none registered'}."
            )
