"""DaCo's datasets: one reader for its folder layout, and the same protocols on synthcity.

Layout (DaCo README; utils.py:35-41; methods.md B.3): ``<root>/original/domain_{a,b}/
{train,val}/*.jpg`` (the ICMR 2021 data: ``*.png``) and ``<root>/generated/domain_{a,b}/train/
*.jpg``, the file ``generated/domain_a/train/<name>`` being the translation of
``original/domain_a/train/<name>`` into domain b (and the reverse for domain_b).

* Train item i = original[i] and generated[i] in sorted path order (all domain_a, then
  domain_b); here each generated file must carry its original's name (what the sorted pairing
  silently assumes, B.7 item 6), and a file without its partner is an error naming it.
* Val pair i = the i-th domain_a and the i-th domain_b val image, sorted (a place seen in both
  domains), so the two domains must hold as many images.
* Splits ``train`` (training only), ``ab`` (queries domain_a, database domain_b), ``ba`` and
  ``cross`` (every val image against all the others, itself excluded: ``exclude_self``), with
  protocols ``daco-<name>-{ab,ba,cross}``: R@1/2/4/8 on explicit positive lists (the partner),
  shorter side 256 (utils.py:24-28).

``daco-synthcity`` builds the same from synthcity's train pairs (the generated image of a pose is
the other condition's render of it; the last 20 % of pairs by name are val), reading the files
where they are.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from vpr_bench import DatasetSpec, EvalProtocol, ResizePolicy
from vpr_bench.data import GeoSplit, ImageRecord
from vpr_bench.errors import DataError, UsageError

__all__ = [
    "DACO_DATASETS",
    "DOMAINS",
    "SPLITS",
    "load_daco_pairs",
    "load_daco_split",
    "load_synthcity_pairs",
    "load_synthcity_split",
    "protocols",
]

DOMAINS = ("domain_a", "domain_b")
SPLITS = ("train", "ab", "ba", "cross")
_EXTENSIONS = (".jpg", ".png")
_RANKS = (1, 2, 4, 8)
_SYNTHCITY_VAL = 0.2


def protocols(name: str) -> tuple[EvalProtocol, ...]:
    """``<name>-ab``, ``<name>-ba`` and ``<name>-cross`` (self excluded)."""
    shorter = ResizePolicy.shorter_side(256)
    notes = {
        "ab": "DaCo A->B: domain_a val images against domain_b's (R@N of the partner).",
        "ba": "DaCo B->A: domain_b val images against domain_a's.",
        "cross": "DaCo A<->B: every val image against all others (itself excluded); same-domain "
        "images are distractors.",
    }
    return tuple(
        EvalProtocol(
            name=f"{name}-{split}",
            split=split,
            db_resize=shorter,
            query_resize=shorter,
            ground_truth="lists",
            recall_ns=_RANKS,
            exclude_self=split == "cross",
            notes=notes[split],
        )
        for split in ("ab", "ba", "cross")
    )


def _images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in _EXTENSIONS)


def _check_root(root: Path) -> None:
    if not (root / "original").is_dir():
        raise DataError(
            f"{root} is not a DaCo dataset folder: it has no original/ (expected "
            "original/domain_{a,b}/{train,val}/*.jpg and generated/domain_{a,b}/train/*.jpg, "
            "the layout of the authors' MEGA folder)."
        )


def _val_domains(root: Path, name: str) -> tuple[list[Path], list[Path]]:
    _check_root(root)
    a, b = (_images(root / "original" / d / "val") for d in DOMAINS)
    if not a or not b:
        empty = DOMAINS[0] if not a else DOMAINS[1]
        raise DataError(f"{root}/original/{empty}/val holds no .jpg/.png images ({name}).")
    if len(a) != len(b):
        raise DataError(
            f"{root}/original: domain_a/val has {len(a)} images but domain_b/val has {len(b)}; "
            "val image i of each domain must show the same place (equal counts, aligned by "
            "sorted name)."
        )
    return a, b


def _val_split(name: str, split: str, a: list[ImageRecord], b: list[ImageRecord]) -> GeoSplit:
    n = len(a)
    pairs = tuple((i,) for i in range(n))
    if split == "ab":
        return GeoSplit(f"{name}-ab", tuple(b), tuple(a), positives=pairs)
    if split == "ba":
        return GeoSplit(f"{name}-ba", tuple(a), tuple(b), positives=pairs)
    both = tuple(a) + tuple(b)
    partner = tuple(((i + n) % (2 * n),) for i in range(2 * n))
    return GeoSplit(f"{name}-cross", both, both, positives=partner)


def _record(path: Path, domain: str, place: int | None = None) -> ImageRecord:
    return ImageRecord(
        path=path,
        place_id=None if place is None else str(place),
        condition=domain,
        domain=domain,
    )


def load_daco_split(root: Path, split: str, name: str = "daco") -> GeoSplit:
    """One split of a DaCo-layout folder (see the module docstring).

    Raises:
        UsageError: Unknown split.
        DataError: A layout error (no original/ or generated/, unequal domain counts, a
            generated file without its original or the reverse).
    """
    root = Path(root).expanduser()
    if split not in SPLITS:
        raise UsageError(f"{name} has no split {split!r}; its splits are {', '.join(SPLITS)}.")
    if split == "train":
        items = load_daco_pairs(root)
        originals = tuple(original for original, _ in items)
        return GeoSplit(f"{name}-train", originals, (), root=root)
    a, b = _val_domains(root, name)
    a_rec = [_record(p, "a", i) for i, p in enumerate(a)]
    b_rec = [_record(p, "b", i) for i, p in enumerate(b)]
    return dataclasses.replace(_val_split(name, split, a_rec, b_rec), root=root)


def load_daco_pairs(root: Path) -> list[tuple[ImageRecord, ImageRecord]]:
    """The train items ``(original, generated)`` of a DaCo-layout folder, in DaCo's order.

    Raises:
        DataError: No generated/ folder, an original without its generated file or a generated
            file without its original (named), or no train images.
    """
    root = Path(root).expanduser()
    _check_root(root)
    if not (root / "generated").is_dir():
        raise DataError(
            f"{root} has no generated/ folder: DaCo trains on each original image with its "
            "GAN translation into the other domain (generated/domain_{a,b}/train/, from the "
            "authors' MEGA folder); this project runs no GAN."
        )
    items: list[tuple[ImageRecord, ImageRecord]] = []
    for domain, label in zip(DOMAINS, ("a", "b"), strict=True):
        originals = _images(root / "original" / domain / "train")
        generated = {p.name: p for p in _images(root / "generated" / domain / "train")}
        names = {p.name for p in originals}
        extra = sorted(set(generated) - names)
        if extra:
            raise DataError(
                f"{root}/generated/{domain}/train/{extra[0]} has no original "
                f"({root}/original/{domain}/train/{extra[0]} is missing); every generated image "
                "must carry its original's file name."
            )
        missing = sorted(names - set(generated))
        if missing:
            raise DataError(
                f"{root}/original/{domain}/train/{missing[0]} has no generated translation "
                f"({root}/generated/{domain}/train/{missing[0]} is missing)."
            )
        other = "b" if label == "a" else "a"
        items += [
            (_record(p, label), _record(generated[p.name], f"generated-{other}")) for p in originals
        ]
    if not items:
        raise DataError(f"{root}/original/domain_{{a,b}}/train holds no .jpg/.png images.")
    return items


def _synthcity_pairs(root: Path) -> list[tuple[ImageRecord, ImageRecord]]:
    from vpr_bench import get_registries, resolve

    spec = get_registries(plugins="daco").datasets.get("synthcity")  # a built-in
    assert spec.load_pairs is not None
    pairs: list[tuple[ImageRecord, ImageRecord]] = resolve(spec.load_pairs)(root)
    if len(pairs) < 10:
        raise DataError(f"{root}: synthcity has {len(pairs)} train pairs; daco-synthcity needs 10.")
    return pairs


def _synthcity_cut(pairs: list[tuple[ImageRecord, ImageRecord]]) -> int:
    return len(pairs) - max(1, round(_SYNTHCITY_VAL * len(pairs)))


def load_synthcity_pairs(root: Path) -> list[tuple[ImageRecord, ImageRecord]]:
    """``daco-synthcity`` train items: each of the first 80 % of pairs' two renders, the other
    condition's render as its "generated" image."""
    pairs = _synthcity_pairs(root)
    train = pairs[: _synthcity_cut(pairs)]
    items = [(_record(a.path, "a"), _record(b.path, "generated-b")) for a, b in train]
    items += [(_record(b.path, "b"), _record(a.path, "generated-a")) for a, b in train]
    return items


def load_synthcity_split(root: Path, split: str) -> GeoSplit:
    """A split of ``daco-synthcity`` (day = domain a, night = domain b)."""
    if split not in SPLITS:
        raise UsageError(
            f"daco-synthcity has no split {split!r}; its splits are {', '.join(SPLITS)}."
        )
    if split == "train":
        items = load_synthcity_pairs(root)
        return GeoSplit("daco-synthcity-train", tuple(o for o, _ in items), (), root=Path(root))
    pairs = _synthcity_pairs(root)
    val = pairs[_synthcity_cut(pairs) :]
    a = [_record(p.path, "a", i) for i, (p, _) in enumerate(val)]
    b = [_record(q.path, "b", i) for i, (_, q) in enumerate(val)]
    return dataclasses.replace(_val_split("daco-synthcity", split, a, b), root=Path(root))


def _daco_spec(data: str, summary: str, paper: str) -> DatasetSpec:
    name = f"daco-{data}"
    return DatasetSpec(
        name=name,
        version=1,
        splits=SPLITS,
        load=f"vpr_bench_daco.data:load_{data}_split",
        load_pairs="vpr_bench_daco.data:load_daco_pairs",
        protocols=protocols(name),
        default_split="cross",
        provides=frozenset({"train", "domain-pairs", "generated"}),
        paper=paper,
        license="see the source dataset's terms; generated images from the DaCo authors",
        default_root=f"~/.cache/vpr-bench/daco/{data}",
        summary=summary,
    )


def load_tokyo_split(root: Path, split: str) -> GeoSplit:
    """A split of ``daco-tokyo`` (day = domain a, night = domain b)."""
    return load_daco_split(root, split, "daco-tokyo")


def load_cityscapes_split(root: Path, split: str) -> GeoSplit:
    """A split of ``daco-cityscapes`` (clear = domain a, foggy = domain b)."""
    return load_daco_split(root, split, "daco-cityscapes")


def load_synthia_split(root: Path, split: str) -> GeoSplit:
    """A split of ``daco-synthia`` (sunset = domain a, rainy night = domain b)."""
    return load_daco_split(root, split, "daco-synthia")


DACO_DATASETS = (
    _daco_spec(
        "tokyo",
        "Tokyo 24/7 query pairs, day (a) / night (b), with GAN translations (DaCo)",
        "Torii et al., 24/7 place recognition by view synthesis, CVPR 2015; DaCo split",
    ),
    _daco_spec(
        "cityscapes",
        "Cityscapes clear (a) / Foggy Cityscapes (b), with GAN translations (DaCo)",
        "Sakaridis et al., Semantic foggy scene understanding, IJCV 2018; DaCo split",
    ),
    _daco_spec(
        "synthia",
        "SYNTHIA-SEQS sunset (a) / rainy night (b), with GAN translations (DaCo)",
        "Ros et al., The SYNTHIA dataset, CVPR 2016; DaCo split",
    ),
    DatasetSpec(
        name="daco-synthcity",
        version=1,
        splits=SPLITS,
        load="vpr_bench_daco.data:load_synthcity_split",
        load_pairs="vpr_bench_daco.data:load_synthcity_pairs",
        protocols=protocols("daco-synthcity"),
        default_split="cross",
        provides=frozenset({"train", "domain-pairs", "generated"}),
        paper="vpr-bench embedded procedural city, DaCo protocols on its day/night train pairs",
        license="generated data, same licence as vpr-bench (MIT)",
        default_root="~/.cache/vpr-bench/synthcity",
        summary="synthcity's day/night train pairs in DaCo's form (80 % train, 20 % val)",
    ),
)
"""``daco-tokyo``, ``daco-cityscapes``, ``daco-synthia`` and ``daco-synthcity``."""
