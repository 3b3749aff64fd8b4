"""The data model every reader produces: a :class:`GeoSplit` of :class:`ImageRecord` s."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vpr_bench.protocol import EvalProtocol

__all__ = ["GeoSplit", "ImageRecord"]


@dataclass(frozen=True)
class ImageRecord:
    """One image of a split.

    Attributes:
        path: Absolute path of the image file.
        easting: UTM easting in metres (NaN when the dataset has no positions).
        northing: UTM northing in metres (NaN when the dataset has no positions).
        place_id: Images of one physical place share it (a panorama, a Tokyo location folder).
        condition: Appearance condition label (``"day"``, ``"night"``, ...) when known.
        domain: Domain label for domain-pair methods (``"a"``/``"b"``, ``"clear"``, ...).
        timestamp: Capture time as ``YYYY[MM[DD...]]`` text when known (TokyoTM: ``YYYYMM``).
    """

    path: Path
    easting: float = float("nan")
    northing: float = float("nan")
    place_id: str | None = None
    condition: str | None = None
    domain: str | None = None
    timestamp: str | None = None


@dataclass(frozen=True)
class GeoSplit:
    """A database and its queries, with how to evaluate them.

    Attributes:
        name: ``"<dataset>-<split>"``, e.g. ``"pitts30k-test"``.
        database: Database images, in index order.
        queries: Query images, in index order.
        protocol: The evaluation protocol of this split (None for training-only splits).
        root: The dataset root the paths were resolved against.
        positives: Explicit ground truth (one sequence of database indices per query) for
            datasets that ship it (VPR-Bench ``ground_truth_new.npy``); None means "compute
            from UTM within the protocol radius".
        manifest: The reader's own identifier of the data, when it has one (synthcity: its
            generation's sha256 and the split); recorded in every result's data identity
            (:func:`vpr_bench.data.identity.data_identity`) beside the harness's digest.
        extras: Reader-specific metadata (e.g. the .mat file's thresholds).
    """

    name: str
    database: tuple[ImageRecord, ...]
    queries: tuple[ImageRecord, ...]
    protocol: EvalProtocol | None = None
    root: Path | None = None
    positives: tuple[tuple[int, ...], ...] | None = None
    manifest: str = ""
    extras: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.positives is not None and len(self.positives) != len(self.queries):
            raise ValueError(
                f"Split {self.name}: ground truth lists {len(self.positives)} queries but the "
                f"split has {len(self.queries)}; the ground-truth file does not belong to these "
                "images."
            )

    @property
    def conditions(self) -> Sequence[str | None]:
        """The condition label of every query (None where unknown)."""
        return [q.condition for q in self.queries]
