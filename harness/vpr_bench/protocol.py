"""Evaluation protocols: named, versioned value objects recorded in every result.

A protocol fixes everything that changes a number but is not the method: image sizes, the
positive radius, the rule for queries without positives, place NMS, the search, and the N of
R@N. Its :meth:`EvalProtocol.digest` goes into every record, and leaderboards never put two
protocols into one column. The canonical v1 protocols are listed in ``docs/protocols.md``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Literal

__all__ = ["EvalProtocol", "ResizePolicy"]

ResizeKind = Literal["hard", "shorter", "native"]
Interpolation = Literal["bilinear", "bicubic"]
INTERPOLATIONS: tuple[str, ...] = ("bilinear", "bicubic")
NoPositiveRule = Literal["fail", "exclude"]
GroundTruthKind = Literal["radius", "lists", "frames", "none"]


@dataclass(frozen=True)
class ResizePolicy:
    """How an image is resized before it reaches the model.

    Attributes:
        kind: ``"hard"`` resizes to exactly ``height`` x ``width``; ``"shorter"`` scales the
            shorter side to ``shorter`` pixels keeping the aspect ratio; ``"native"`` keeps the
            image as it is on disk.
        height: Target height for ``"hard"``.
        width: Target width for ``"hard"``.
        shorter: Target shorter side for ``"shorter"``.
        interpolation: ``"bilinear"`` (the default) or ``"bicubic"`` (DISAM's and
            pix2pix's resize). Recorded only when bicubic, so the digests of every bilinear
            protocol and the keys of their cached descriptors do not change.
    """

    kind: ResizeKind = "native"
    height: int | None = None
    width: int | None = None
    shorter: int | None = None
    interpolation: Interpolation = "bilinear"

    def __post_init__(self) -> None:
        if self.kind == "hard" and not (self.height and self.width):
            raise ValueError(
                "ResizePolicy('hard') needs a positive height and width, e.g. 480x640."
            )
        if self.kind == "shorter" and not self.shorter:
            raise ValueError("ResizePolicy('shorter') needs shorter=<pixels>, e.g. 640.")
        if self.kind not in ("hard", "shorter", "native"):
            raise ValueError(
                f"ResizePolicy kind must be hard, shorter or native, not {self.kind!r}."
            )
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(
                f"ResizePolicy interpolation must be {' or '.join(INTERPOLATIONS)}, not "
                f"{self.interpolation!r}."
            )

    @classmethod
    def hard(
        cls, height: int, width: int, interpolation: Interpolation = "bilinear"
    ) -> ResizePolicy:
        """Resize to exactly ``height`` x ``width``."""
        return cls("hard", height=height, width=width, interpolation=interpolation)

    @classmethod
    def shorter_side(cls, pixels: int, interpolation: Interpolation = "bilinear") -> ResizePolicy:
        """Scale the shorter side to ``pixels`` keeping the aspect ratio."""
        return cls("shorter", shorter=pixels, interpolation=interpolation)

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict of the fields (``interpolation`` only when not bilinear)."""
        data = asdict(self)
        if self.interpolation == "bilinear":
            del data["interpolation"]
        return data

    def describe(self) -> str:
        """A short human-readable form, e.g. ``480x640``, ``shorter 640`` or ``256x256 bicubic``."""
        if self.kind == "hard":
            text = f"{self.height}x{self.width}"
        elif self.kind == "shorter":
            text = f"shorter {self.shorter}"
        else:
            return "native"
        return text if self.interpolation == "bilinear" else f"{text} {self.interpolation}"


@dataclass(frozen=True)
class EvalProtocol:
    """A named, versioned evaluation protocol.

    Attributes:
        name: Lower-kebab protocol name, e.g. ``"pitts30k-test"``.
        version: Bumped whenever a choice changes numbers.
        split: The dataset split this protocol evaluates (e.g. ``"test"``).
        db_resize: Resize policy for database images.
        query_resize: Resize policy for query images.
        radius_m: Positive radius in metres (``ground_truth == "radius"``).
        ground_truth: ``"radius"`` (UTM within ``radius_m``), ``"lists"`` (explicit lists shipped
            with the dataset, e.g. VPR-Bench), ``"frames"`` (frame index tolerance) or
            ``"none"`` (no local ground truth, e.g. a benchmark server scores the predictions:
            no R@N is computed and the records never reach a leaderboard).
        no_positive: ``"fail"`` counts a query without positives as a miss; ``"exclude"`` leaves
            it out of R@N (it still feeds precision-recall metrics).
        place_nms: Keep only the first hit per database place (Tokyo 24/7, OpenIBL style).
        nms_factor: Retrieve ``max(N) * nms_factor`` before place NMS.
        drop_same_timestamp: Drop database items captured at the query's timestamp (TokyoTM).
        recall_ns: The N of R@N.
        search: ``"exact"`` or a faiss index-factory string (an approximate variant is a
            different protocol).
        notes: Free text shown on leaderboards.
        exclude_self: Remove each query's own image (the database image with the query's
            path) from its ranking, for protocols whose queries are also database images
            (DaCo's A<->B: every image against all others). Recorded only when True, so the
            digests of the other protocols do not change.
    """

    name: str
    version: int = 1
    split: str = "test"
    db_resize: ResizePolicy = field(default_factory=ResizePolicy)
    query_resize: ResizePolicy = field(default_factory=ResizePolicy)
    radius_m: float = 25.0
    ground_truth: GroundTruthKind = "radius"
    no_positive: NoPositiveRule = "fail"
    place_nms: bool = False
    nms_factor: int = 12
    drop_same_timestamp: bool = False
    recall_ns: tuple[int, ...] = (1, 5, 10, 20)
    search: str = "exact"
    notes: str = ""
    exclude_self: bool = False

    def __post_init__(self) -> None:
        if not self.name or self.name != self.name.strip().lower().replace("_", "-"):
            raise ValueError(
                f"Protocol name {self.name!r} must be lower-kebab, e.g. 'pitts30k-test'."
            )
        if self.version < 1:
            raise ValueError(f"Protocol {self.name}: version must be >= 1, got {self.version}.")
        if self.radius_m <= 0:
            raise ValueError(
                f"Protocol {self.name}: radius_m must be positive, got {self.radius_m}."
            )
        if self.no_positive not in ("fail", "exclude"):
            raise ValueError(f"Protocol {self.name}: no_positive must be 'fail' or 'exclude'.")
        if self.ground_truth not in ("radius", "lists", "frames", "none"):
            raise ValueError(
                f"Protocol {self.name}: ground_truth must be radius, lists, frames or none."
            )
        if not self.recall_ns or any(n < 1 for n in self.recall_ns):
            raise ValueError(f"Protocol {self.name}: recall_ns must be positive integers.")
        if tuple(sorted(set(self.recall_ns))) != self.recall_ns:
            raise ValueError(f"Protocol {self.name}: recall_ns must be sorted and unique.")
        if self.nms_factor < 1:
            raise ValueError(f"Protocol {self.name}: nms_factor must be >= 1.")

    @property
    def key(self) -> str:
        """``name@vN``: the identity used in records and leaderboard columns."""
        return f"{self.name}@v{self.version}"

    @property
    def has_ground_truth(self) -> bool:
        """False for a protocol without local ground truth (predictions only)."""
        return self.ground_truth != "none"

    @property
    def exact(self) -> bool:
        """True when the search is exact (not an approximate index)."""
        return self.search == "exact"

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict of every field.

        ``exclude_self`` appears only when True and a resize's ``interpolation`` only when it is
        not bilinear, so adding those fields left every earlier digest unchanged.
        """
        data = asdict(self)
        data["db_resize"] = self.db_resize.to_dict()
        data["query_resize"] = self.query_resize.to_dict()
        if not self.exclude_self:
            del data["exclude_self"]
        return data

    def digest(self) -> str:
        """A 16-hex-digit hash of every field; equal protocols give equal digests."""
        payload = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> EvalProtocol:
        """Rebuild a protocol from :meth:`to_dict` output."""
        values = dict(data)
        for key in ("db_resize", "query_resize"):
            raw = values.get(key)
            if isinstance(raw, dict):
                values[key] = ResizePolicy(**raw)
        if isinstance(values.get("recall_ns"), list):
            values["recall_ns"] = tuple(values["recall_ns"])  # type: ignore[arg-type]
        return cls(**values)  # type: ignore[arg-type]
