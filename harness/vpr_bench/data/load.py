"""Dataset targets and the one call that loads a split: :func:`load_split`.

A reader (``DatasetSpec.load``) returns images and positions only. The protocol a split is
evaluated under belongs to the dataset's spec, so :func:`load_split` attaches it here, once,
from the :class:`SplitTarget`: every consumer (evaluation, validation, ground truth) reads the
same protocol object.

A :class:`SplitTarget` is what a ``--dataset`` name resolves to: the dataset spec, the split,
the folder and the protocol. :class:`SplitLoader` loads each target at most once, so a run that
needs the training split for a baseline's initialisation, for training and for PCA reads it
once.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vpr_bench.errors import DataError, UnknownNameError, UsageError
from vpr_bench.protocol import EvalProtocol
from vpr_bench.registry import resolve
from vpr_bench.specs import DatasetSpec, normalize_name

if TYPE_CHECKING:
    from vpr_bench.data.split import GeoSplit
    from vpr_bench.registry import Registries

__all__ = ["SplitLoader", "SplitTarget", "load_split", "resolve_target"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SplitTarget:
    """One split of one dataset in one folder, with the protocol it is evaluated under.

    Attributes:
        spec: The dataset spec.
        split: The split name (one of ``spec.splits``).
        root: The dataset folder.
        protocol: The protocol the split is evaluated under (None: a training-only split).
    """

    spec: DatasetSpec
    split: str
    root: Path
    protocol: EvalProtocol | None

    def __post_init__(self) -> None:
        if self.split not in self.spec.splits:
            raise UsageError(
                f"Dataset {self.spec.name} has no split {self.split!r}; its splits are "
                f"{', '.join(self.spec.splits)}."
            )

    @property
    def name(self) -> str:
        """``<dataset>-<split>``, e.g. ``pitts30k-test``."""
        return f"{self.spec.name}-{self.split}"

    def require_protocol(self) -> EvalProtocol:
        """The protocol, or a usage error for a training-only split.

        Raises:
            UsageError: The split has no evaluation protocol.
        """
        if self.protocol is None:
            raise UsageError(
                f"Dataset {self.spec.name} (split {self.split}) has no evaluation protocol; "
                "evaluate a split that has one (see: vpr-bench list protocols)."
            )
        return self.protocol


def resolve_target(
    registries: Registries,
    name: str,
    root: Path | None = None,
    *,
    protocol: str | None = None,
) -> SplitTarget:
    """Resolve a ``--dataset`` name (and optional ``--protocol``) to a :class:`SplitTarget`.

    ``pitts30k-test`` is a dataset and split; ``tokyo247`` means its default split; a protocol
    name (``tokyo247-vg``) means that protocol's dataset and split under that protocol.

    Args:
        registries: Where datasets are looked up.
        name: The ``--dataset`` text.
        root: The dataset folder (None: ``VPR_BENCH_DATA`` or the dataset's default).
        protocol: A protocol name that must belong to the dataset (``--protocol``).

    Raises:
        UnknownNameError: No such dataset, split or protocol.
        UsageError: The protocol belongs to another dataset.
    """
    from vpr_bench.data.roots import resolve_root

    spec, split = registries.dataset_split(name)
    chosen = _named_protocol(registries, name)
    if protocol is not None:
        chosen = _protocol_of(registries, spec, protocol)
        split = chosen.split
    if chosen is None:
        chosen = spec.protocol_for(split)
    return SplitTarget(spec, split, resolve_root(spec, root), chosen)


def _named_protocol(registries: Registries, name: str) -> EvalProtocol | None:
    entry = registries.protocols().get(normalize_name(name))
    return entry[0] if entry is not None else None


def _protocol_of(registries: Registries, spec: DatasetSpec, name: str) -> EvalProtocol:
    protocols = registries.protocols()
    key = normalize_name(name)
    if key not in protocols:
        raise UnknownNameError("protocol", name, protocols, hint="See: vpr-bench list protocols.")
    protocol, owner = protocols[key]
    if owner.name != spec.name:
        mine = [p.name for p in spec.protocols]
        raise UsageError(
            f"Protocol {protocol.name} belongs to dataset {owner.name}, not {spec.name}; "
            f"protocols of {spec.name}: {', '.join(mine) or 'none'}."
        )
    return protocol


def load_split(target: SplitTarget, *, for_evaluation: bool = False) -> GeoSplit:
    """Read ``target`` with its dataset's reader and attach the target's protocol.

    Args:
        target: What to read.
        for_evaluation: Require a protocol and both database and query images.

    Raises:
        UsageError: ``for_evaluation`` and the split has no protocol.
        DataError: The reader failed, or (``for_evaluation``) found no database or no queries.
    """
    if for_evaluation:
        target.require_protocol()
    geo: GeoSplit = resolve(target.spec.load)(Path(target.root), target.split)
    geo = dataclasses.replace(geo, protocol=target.protocol)
    if for_evaluation:
        _check_evaluable(geo, target)
    return geo


def _check_evaluable(geo: GeoSplit, target: SplitTarget) -> None:
    target.require_protocol()
    if not geo.database or not geo.queries:
        raise DataError(
            f"Split {geo.name} under {target.root} has {len(geo.database)} database and "
            f"{len(geo.queries)} query images; evaluation needs both."
        )


class SplitLoader:
    """Loads each :class:`SplitTarget` at most once (per dataset, split and folder)."""

    def __init__(self) -> None:
        self._loaded: dict[tuple[str, str, str], GeoSplit] = {}
        self.reads = 0
        """How many times a reader ran (tests count it)."""

    def load(self, target: SplitTarget, *, for_evaluation: bool = False) -> GeoSplit:
        """The split of ``target``, read on first use.

        Raises:
            UsageError, DataError: As :func:`load_split`.
        """
        key = (target.spec.name, target.split, str(Path(target.root).resolve()))
        cached = self._loaded.get(key)
        if cached is None:
            cached = load_split(target)
            self.reads += 1
            self._loaded[key] = cached
        if cached.protocol != target.protocol:
            cached = dataclasses.replace(cached, protocol=target.protocol)
        if for_evaluation:
            _check_evaluable(cached, target)
        return cached
