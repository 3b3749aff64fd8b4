"""Typed records that cross hooks: what plugins yield and what the harness passes back.

All are stdlib frozen dataclasses validated in ``__post_init__`` (no extra dependency for plugin
authors). Callables may be given lazily as ``"package.module:object"`` strings; they are resolved
on first use by :func:`vpr_bench.registry.resolve`. Nothing heavy is imported here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import urlparse

from vpr_bench.preprocess import IMAGENET, MATCONVNET, Preprocess
from vpr_bench.protocol import EvalProtocol

__all__ = [
    "IMAGENET",
    "MATCONVNET",
    "BatchKind",
    "Checkpoint",
    "DatasetSpec",
    "EvaluatorSpec",
    "LossSpec",
    "MethodSpec",
    "MetricSpec",
    "ModelSpec",
    "PaperResult",
    "Preprocess",
    "RemoteFile",
    "TrainerSpec",
    "normalize_name",
]

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")

LazyCallable = Callable[..., Any] | str


def normalize_name(name: str) -> str:
    """Normalise a component name to lower-kebab case (``"SARE_Joint"`` -> ``"sare-joint"``)."""
    return re.sub(r"[\s_.]+", "-", name.strip()).lower()


def _check_name(owner: str, name: str) -> str:
    normalized = normalize_name(name)
    if not _NAME_RE.match(normalized):
        raise ValueError(
            f"{owner} name {name!r} is not valid: use letters, digits and '-' "
            "(it is normalised to lower-kebab case), e.g. 'my-netvlad'."
        )
    return normalized


def _check_callable(owner: str, attr: str, value: object, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if isinstance(value, str):
        if ":" not in value or value.startswith(":") or value.endswith(":"):
            raise ValueError(
                f"{owner}.{attr} = {value!r} is not a lazy target: write 'package.module:object'."
            )
    elif not callable(value):
        raise ValueError(f"{owner}.{attr} must be callable or a 'package.module:object' string.")


class BatchKind(StrEnum):
    """How a trainer batches training data; a loss declares the kind its forward receives.

    ``tuples`` (mined by distance, NetVLAD/OpenIBL): ``anchors [B,D], positives [B,P,D],
    negatives [B,N,D]``; ``places`` (P places x K views, in-batch mining): ``descriptors
    [P*K,D], labels [P*K]``; ``domain-pairs`` (day/night, clear/fog): ``domain_a [B,D],
    domain_b [B,D]``, row i of both the same place. Descriptors arrive L2-normalised.

    ``region-tuples`` (SFRS, ClusVPR; the ``region-generations`` trainer, models declaring
    ``ModelSpec.regions``): ``anchors [B,R,L]`` (the query's R region descriptors, region 0 the
    global one), ``pairs [B,1+N,R,L]`` (the easiest positive, then N negatives),
    ``sim_diff [B,P,R,R]`` (the student's similarities between the query's regions and the
    regions of P difficult positives), ``sim_diff_teacher [B,P,R,R]`` (the same from the
    previous generation's model, no gradient), ``diff_mask [B,P]`` (bool, False where a tuple
    has fewer than P difficult positives) and ``generation`` (int, 0 first).

    ``domain-views`` (DaCo-style self-supervision): ``views [B,V,D]``, row i one training
    item (an image and its rendering in the other domain, from ``DatasetSpec.load_pairs``)
    under V augmentations; V is the loss's ``n_views`` attribute and what each view shows is
    the trainer's and the loss's convention.

    ``domain-images`` (DISAM; unaligned images labelled by domain, the dataset providing
    ``conditions`` or ``domains``): the trainer draws an image A of domain a and an image B of
    another domain b, encodes them with their domains' encoders and passes the loss four latent
    codes ``[B,C,H,W]``: ``enc_a``, ``enc_b``, ``rec_a`` (A translated to b and encoded again)
    and ``rec_b`` (B translated to a and encoded again). Row i of the four is one such draw.
    """

    TUPLES = "tuples"
    PLACES = "places"
    DOMAIN_PAIRS = "domain-pairs"
    REGION_TUPLES = "region-tuples"
    DOMAIN_VIEWS = "domain-views"
    DOMAIN_IMAGES = "domain-images"


@dataclass(frozen=True)
class ModelSpec:
    """A model: backbone plus aggregation, mapping images to L2-normalised descriptors.

    Attributes:
        name: Lower-kebab name, unique over all plugins.
        build: ``build(config) -> nn.Module`` (or a lazy target). The module has an int
            ``descriptor_dim`` and its eval-mode forward maps ``[B,3,H,W]`` to L2-normalised
            ``[B,D]`` float32, each row independent of its batch-mates.
        config_cls: The dataclass holding the model's options (or a lazy target).
        preprocess: The input convention of the model.
        summary: One line for ``vpr-bench list models``.
        leaderboard: False for test-only models that must never appear on a leaderboard.
        prepare: Optional data-dependent initialisation run before training,
            ``prepare(model, config, images: Iterable[Tensor [B,3,H,W]], seed: int) -> None``
            (NetVLAD: k-means centroids of local descriptors). ``images`` yields preprocessed
            batches of training images in a random order.
        regions: How many region descriptors ``model(images, regions=True)`` returns per
            image (``[B, regions, D]``, region 0 equal to the eval descriptor); 0 for a model
            without regions. Losses of the ``region-tuples`` kind need it.
    """

    name: str
    build: LazyCallable
    config_cls: type | str
    preprocess: Preprocess = field(default_factory=Preprocess)
    summary: str = ""
    leaderboard: bool = True
    prepare: LazyCallable | None = None
    regions: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", _check_name("ModelSpec", self.name))
        _check_callable(f"ModelSpec({self.name})", "build", self.build)
        _check_callable(f"ModelSpec({self.name})", "prepare", self.prepare, optional=True)
        if isinstance(self.regions, bool) or not isinstance(self.regions, int) or self.regions < 0:
            raise ValueError(
                f"ModelSpec({self.name}).regions must be an int >= 0 (0: no regions), "
                f"not {self.regions!r}."
            )


@dataclass(frozen=True)
class LossSpec:
    """A training loss.

    Attributes:
        name: Lower-kebab name.
        build: ``build(config) -> nn.Module`` whose forward takes the batch of the declared kind.
        config_cls: The loss options dataclass (or a lazy target).
        batch_kind: The kind of batch the loss consumes.
        summary: One line for ``vpr-bench list losses``.
    """

    name: str
    build: LazyCallable
    config_cls: type | str
    batch_kind: BatchKind = BatchKind.TUPLES
    summary: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", _check_name("LossSpec", self.name))
        _check_callable(f"LossSpec({self.name})", "build", self.build)
        object.__setattr__(self, "batch_kind", BatchKind(self.batch_kind))


@dataclass(frozen=True)
class TrainerSpec:
    """A training procedure.

    Attributes:
        name: Lower-kebab name, e.g. ``"triplet-mining"``.
        fit: ``fit(context) -> outcome``; the context and outcome types live in
            :mod:`vpr_bench.train`.
        batch_kinds: The batch kinds the trainer can produce.
        config_cls: The trainer's options dataclass (epochs, optimiser, ...) or a lazy target.
        summary: One line for ``vpr-bench list trainers``.
    """

    name: str
    fit: LazyCallable
    batch_kinds: tuple[BatchKind, ...] = (BatchKind.TUPLES,)
    config_cls: type | str | None = None
    summary: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", _check_name("TrainerSpec", self.name))
        _check_callable(f"TrainerSpec({self.name})", "fit", self.fit)
        kinds = tuple(BatchKind(k) for k in self.batch_kinds)
        if not kinds:
            raise ValueError(f"TrainerSpec({self.name}) must declare at least one batch kind.")
        object.__setattr__(self, "batch_kinds", kinds)


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset: a reader of one on-disk format and the protocols of its splits.

    Attributes:
        name: Lower-kebab name, e.g. ``"pitts30k"``. ``--dataset pitts30k-test`` addresses the
            ``test`` split of it; ``--dataset pitts30k`` its default split.
        version: Bumped when the reader's output changes.
        splits: The split names the reader can load.
        load: ``load(root: Path, split: str) -> GeoSplit`` (or a lazy target).
        protocols: The protocols of evaluable splits (one per split at most).
        default_split: The split used when the name has no suffix.
        provides: Capabilities, e.g. ``{"conditions", "domain-pairs", "timestamps", "train"}``.
        paper: Citation of the dataset.
        license: The dataset's terms in a few words.
        default_root: Where the data is looked for when no root is given (may use ``~``).
        summary: One line for ``vpr-bench list datasets``.
        load_pairs: For datasets providing ``domain-pairs``: ``load_pairs(root: Path) ->
            list[tuple[ImageRecord, ImageRecord]]``, the same place rendered in two domains.
    """

    name: str
    version: int
    splits: tuple[str, ...]
    load: LazyCallable
    protocols: tuple[EvalProtocol, ...] = ()
    default_split: str = "test"
    provides: frozenset[str] = frozenset()
    paper: str = ""
    license: str = ""
    default_root: str = ""
    summary: str = ""
    load_pairs: LazyCallable | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", _check_name("DatasetSpec", self.name))
        _check_callable(f"DatasetSpec({self.name})", "load", self.load)
        if self.load_pairs is not None:
            _check_callable(f"DatasetSpec({self.name})", "load_pairs", self.load_pairs)
        elif "domain-pairs" in self.provides:
            raise ValueError(f"DatasetSpec({self.name}): 'domain-pairs' needs load_pairs.")
        if not self.splits:
            raise ValueError(f"DatasetSpec({self.name}) must list at least one split.")
        if self.default_split not in self.splits:
            raise ValueError(
                f"DatasetSpec({self.name}): default_split {self.default_split!r} is not one of "
                f"its splits {list(self.splits)}."
            )
        seen: set[str] = set()
        for protocol in self.protocols:
            if protocol.split not in self.splits:
                raise ValueError(
                    f"DatasetSpec({self.name}): protocol {protocol.name} names split "
                    f"{protocol.split!r}, which is not one of {list(self.splits)}."
                )
            if protocol.name in seen:
                raise ValueError(f"DatasetSpec({self.name}) lists protocol {protocol.name} twice.")
            seen.add(protocol.name)
        object.__setattr__(self, "provides", frozenset(self.provides))

    def protocol_for(self, split: str) -> EvalProtocol | None:
        """The first protocol declared for ``split``, or None (training-only split)."""
        return next((p for p in self.protocols if p.split == split), None)


@dataclass(frozen=True)
class MetricSpec:
    """One number an evaluator produces, e.g. ``R@1``.

    Attributes:
        name: The key in ``EvalRecord.metrics`` (e.g. ``"R@1"``, ``"mAP@5"``).
        description: What it measures, for help texts and leaderboard footnotes.
        higher_is_better: Sort direction on leaderboards.
        unit: ``"%"`` for percentages, ``""`` for plain numbers.
    """

    name: str
    description: str = ""
    higher_is_better: bool = True
    unit: str = "%"

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ValueError("MetricSpec name must not be empty.")


@dataclass(frozen=True)
class EvaluatorSpec:
    """A metric family computed from one shared kNN result.

    Attributes:
        name: Lower-kebab name.
        metrics: The metrics it may produce (their names are the record keys).
        compute: ``compute(result: RetrievalResult, protocol: EvalProtocol) -> dict[str, float]``.
        requires_knn: How many neighbours per query it needs (0: it uses ``recall_ns``).
        summary: One line for ``vpr-bench list evaluators``.
        export: Optional ``export(result: RetrievalResult, split: GeoSplit, folder: Path,
            method: str) -> Path | None`` (or a lazy target): writes a file from the kNN result
            (e.g. a benchmark submission) into ``folder``, beside the predictions file, and
            returns it; None when the split is not one it exports.
    """

    name: str
    metrics: tuple[MetricSpec, ...]
    compute: LazyCallable
    requires_knn: int = 0
    summary: str = ""
    export: LazyCallable | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", _check_name("EvaluatorSpec", self.name))
        _check_callable(f"EvaluatorSpec({self.name})", "compute", self.compute)
        _check_callable(f"EvaluatorSpec({self.name})", "export", self.export, optional=True)
        if self.requires_knn < 0:
            raise ValueError(f"EvaluatorSpec({self.name}).requires_knn must be >= 0.")


@dataclass(frozen=True)
class RemoteFile:
    """A downloadable file: where it is published and, where known, its sha256."""

    uri: str
    sha256: str | None = None
    size_bytes: int | None = None

    def __post_init__(self) -> None:
        if not self.uri:
            raise ValueError("RemoteFile needs a uri.")
        if self.sha256 is not None and not _SHA256_RE.match(self.sha256):
            raise ValueError(f"RemoteFile({self.uri}): sha256 must be 64 lowercase hex digits.")


@dataclass(frozen=True)
class PaperResult:
    """A published number, shown on leaderboards as a separate "paper" row.

    Attributes:
        dataset: The protocol name it corresponds to (e.g. ``"pitts250k-test"``).
        metrics: ``{"R@1": 88.4, ...}`` in percent.
        source: Where it was published (paper table, README line).
        variant: Which configuration (e.g. ``"VGG16 + PCA-4096"``).
    """

    dataset: str
    metrics: Mapping[str, float]
    source: str
    variant: str = ""

    def __post_init__(self) -> None:
        if not self.source:
            raise ValueError(f"PaperResult({self.dataset}) must name its source.")


@dataclass(frozen=True)
class Checkpoint:
    """Released weights of a method, for ``vpr-bench run --checkpoint <tag>``.

    Attributes:
        tag: Short name used on the command line (``--checkpoint <tag>``).
        file: Where the weights are published.
        trained_on: The ``--dataset`` style name of the training set (also where PCA is fitted
            when the file has none).
        overrides: Config overrides the weights need (e.g. backbone, PCA dimension).
        reported: The numbers the authors report for these weights.
        license: The weights' terms.
        filename: The released file's name (default: the last part of ``file.uri``).
        load: ``load(path, model) -> PcaWhitening | None`` (or a lazy target): loads the file
            strictly, returns the PCA stored in it if any. None: a state dict of the model.
    """

    tag: str
    file: RemoteFile
    trained_on: str
    overrides: Mapping[str, Any] = field(default_factory=dict)
    reported: tuple[PaperResult, ...] = ()
    license: str = ""
    filename: str = ""
    load: LazyCallable | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "tag", _check_name("Checkpoint", self.tag))
        _check_callable(f"Checkpoint({self.tag})", "load", self.load, optional=True)
        if not self.file_name or "/" in self.file_name:
            raise ValueError(
                f"Checkpoint({self.tag}): give filename= (the released file's name); it cannot "
                f"be taken from {self.file.uri!r}."
            )

    @property
    def file_name(self) -> str:
        """The file name looked for on disk: ``filename``, else the uri's last part."""
        return self.filename or urlparse(self.file.uri).path.rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class MethodSpec:
    """The leaderboard unit: names the model, loss, trainer and training data of a method.

    Attributes:
        name: Lower-kebab name, e.g. ``"sare-joint"``.
        model: Name of a registered model.
        loss: Name of a registered loss.
        trainer: Name of a registered trainer.
        train_dataset: ``--dataset`` style name of the default training set.
        profiles: Named override sets, ``--set`` keys (``{"quick": {"trainer.epochs": 1}}``).
        paper: Published numbers.
        checkpoints: Released weights.
        summary: One line for ``vpr-bench list methods``.
        leaderboard: False for test-only methods.
        weights_loader: ``fn(path, model) -> PcaWhitening | None`` (or a lazy target) reading
            weight files in a foreign layout (OpenIBL's keys) strictly; returns the file's PCA.
            ``--weights`` uses it when the vpr-bench layout does not fit (``vpr_bench.weights``).
        after: Methods whose training runs this one reuses (DISAM's coarse-to-fine model takes
            the coarse and the fine runs' weights): ``vpr-bench run`` runs them first when they
            are part of the same run.
    """

    name: str
    model: str
    loss: str
    trainer: str
    train_dataset: str
    profiles: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    paper: tuple[PaperResult, ...] = ()
    checkpoints: tuple[Checkpoint, ...] = ()
    summary: str = ""
    leaderboard: bool = True
    weights_loader: LazyCallable | None = None
    after: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", _check_name("MethodSpec", self.name))
        owner = f"MethodSpec({self.name})"
        _check_callable(owner, "weights_loader", self.weights_loader, optional=True)
        object.__setattr__(self, "after", tuple(normalize_name(a) for a in self.after))
        for attr in ("model", "loss", "trainer"):
            object.__setattr__(
                self, attr, _check_name(f"MethodSpec({self.name}).{attr}", getattr(self, attr))
            )
        tags = [c.tag for c in self.checkpoints]
        if len(tags) != len(set(tags)):
            raise ValueError(f"MethodSpec({self.name}) lists a checkpoint tag twice: {tags}.")
