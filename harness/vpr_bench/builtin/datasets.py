"""Built-in datasets and their canonical v1 protocols (docs/protocols.md).

Readers are referenced by lazy ``"pkg.mod:obj"`` targets so that listing stays instant: this
module imports no numpy, scipy or torch. The protocol constants live here so that the readers
and the registry share one definition; :func:`protocol_for` maps (dataset, split) to its
protocol.

One split per protocol: where one set of images has two protocols (Tokyo 24/7 with the
OpenIBL or the datasets_vg query size, MSLS per-city or merged), each protocol gets its own
split name (``tokyo247-vg`` is split ``vg`` of ``tokyo247``), so ``load(root, split)`` knows
which protocol it is building.
"""

from __future__ import annotations

from collections.abc import Iterator

from vpr_bench.hookspecs import hookimpl
from vpr_bench.protocol import EvalProtocol, ResizePolicy
from vpr_bench.specs import DatasetSpec

__all__ = ["PROTOCOLS", "protocol_for"]


_VGA = ResizePolicy.hard(480, 640)
_NATIVE = ResizePolicy()
_FORMATS = "vpr_bench.data.formats"

PROTOCOLS: dict[tuple[str, str], EvalProtocol] = {
    ("pitts30k", "test"): EvalProtocol(
        "pitts30k-test", split="test", db_resize=_VGA, query_resize=_VGA
    ),
    ("pitts30k", "val"): EvalProtocol(
        "pitts30k-val", split="val", db_resize=_VGA, query_resize=_VGA
    ),
    ("pitts250k", "test"): EvalProtocol(
        "pitts250k-test", split="test", db_resize=_VGA, query_resize=_VGA
    ),
    ("pitts250k", "val"): EvalProtocol(
        "pitts250k-val", split="val", db_resize=_VGA, query_resize=_VGA
    ),
    ("tokyo247", "test"): EvalProtocol(
        "tokyo247",
        split="test",
        db_resize=_VGA,
        query_resize=ResizePolicy.shorter_side(640),
        place_nms=True,
        nms_factor=12,
        notes="OpenIBL convention: place NMS over database location folders",
    ),
    ("tokyo247", "vg"): EvalProtocol(
        "tokyo247-vg",
        split="vg",
        db_resize=_VGA,
        query_resize=ResizePolicy.shorter_side(480),
        notes="datasets_vg convention: queries shorter side 480, no NMS",
    ),
    ("tokyotm", "val"): EvalProtocol(
        "tokyotm-val",
        split="val",
        db_resize=_VGA,
        query_resize=_VGA,
        drop_same_timestamp=True,
        notes="non-trivial: database images of the query's capture month are dropped",
    ),
    ("msls", "val"): EvalProtocol(
        "msls-val",
        split="val",
        db_resize=_VGA,
        query_resize=_VGA,
        no_positive="exclude",
        notes="official MSLS: retrieval per city (cph, sf), panoramas dropped",
    ),
    ("msls", "val-merged"): EvalProtocol(
        "msls-val-merged",
        split="val-merged",
        db_resize=_VGA,
        query_resize=_VGA,
        no_positive="exclude",
        notes="MixVPR-style: one merged cph+sf database, panoramas dropped",
    ),
    ("vg-folder", "test"): EvalProtocol(
        "vg-folder", split="test", db_resize=_VGA, query_resize=_VGA
    ),
    ("vprbench-folder", "test"): EvalProtocol(
        "vprbench-folder",
        split="test",
        db_resize=_NATIVE,
        query_resize=_NATIVE,
        ground_truth="lists",
        no_positive="exclude",
        notes="ground_truth_new.npy lists; -1 = no true match",
    ),
    ("nordland-1f", "test"): EvalProtocol(
        "nordland-1f",
        split="test",
        db_resize=_NATIVE,
        query_resize=_NATIVE,
        ground_truth="lists",
        no_positive="fail",
        notes="VPR-Bench Nordland: every 10th frame queries every frame; matches within 1 frame",
    ),
    ("csv-folder", "test"): EvalProtocol(
        "csv-folder", split="test", db_resize=_VGA, query_resize=_VGA
    ),
}
"""The canonical protocol of every evaluable (dataset, split)."""


def protocol_for(dataset: str, split: str) -> EvalProtocol | None:
    """The protocol of ``split`` of built-in ``dataset``, or None for a training-only split."""
    return PROTOCOLS.get((dataset, split))


def _protocols(dataset: str) -> tuple[EvalProtocol, ...]:
    return tuple(p for (d, _), p in PROTOCOLS.items() if d == dataset)


_NETVLAD_LICENSE = "research use; terms of the NetVLAD dataset release (Arandjelovic et al.)"


def _builtin_specs() -> Iterator[DatasetSpec]:
    yield DatasetSpec(
        name="pitts30k",
        version=1,
        splits=("train", "val", "test"),
        load=f"{_FORMATS}.netvlad_mat:load_pitts30k",
        protocols=_protocols("pitts30k"),
        provides=frozenset({"train"}),
        paper="Torii et al., Visual Place Recognition with Repetitive Structures, CVPR 2013",
        license=_NETVLAD_LICENSE,
        default_root="~/data/vpr/pitts30k",
        summary="Pittsburgh 30k (NetVLAD .mat + 000..010/ + queries_real/)",
    )
    yield DatasetSpec(
        name="pitts250k",
        version=1,
        splits=("train", "val", "test"),
        load=f"{_FORMATS}.netvlad_mat:load_pitts250k",
        protocols=_protocols("pitts250k"),
        provides=frozenset({"train"}),
        paper="Torii et al., Visual Place Recognition with Repetitive Structures, CVPR 2013",
        license=_NETVLAD_LICENSE,
        default_root="~/data/vpr/pitts250k",
        summary="Pittsburgh 250k (NetVLAD .mat + 000..010/ + queries_real/)",
    )
    yield DatasetSpec(
        name="tokyo247",
        version=1,
        splits=("test", "vg"),
        load=f"{_FORMATS}.netvlad_mat:load_tokyo247",
        protocols=_protocols("tokyo247"),
        paper="Torii et al., 24/7 Place Recognition by View Synthesis, CVPR 2015",
        license="research use; Tokyo 24/7 terms (Torii et al.)",
        default_root="~/data/vpr/tokyo247",
        summary="Tokyo 24/7 (tokyo247.mat + 03814..03829/*.png + 247query_subset_v2/)",
    )
    yield DatasetSpec(
        name="tokyotm",
        version=1,
        splits=("train", "val"),
        default_split="val",
        load=f"{_FORMATS}.netvlad_mat:load_tokyotm",
        protocols=_protocols("tokyotm"),
        provides=frozenset({"train", "timestamps"}),
        paper="Arandjelovic et al., NetVLAD, CVPR 2016 (Tokyo Time Machine)",
        license=_NETVLAD_LICENSE,
        default_root="~/data/vpr/tokyotm",
        summary="Tokyo Time Machine (tokyoTM_{train,val}.mat + images/)",
    )
    yield DatasetSpec(
        name="msls",
        version=1,
        splits=("train", "val", "val-merged"),
        default_split="val",
        load=f"{_FORMATS}.msls:load_msls",
        protocols=_protocols("msls"),
        provides=frozenset({"train", "conditions"}),
        paper="Warburg et al., Mapillary Street-Level Sequences, CVPR 2020",
        license="CC BY-NC-SA 4.0 (Mapillary SLS terms)",
        default_root="~/data/vpr/msls",
        summary="Mapillary SLS (train_val/<city>/{database,query}/*.csv + images/)",
    )
    yield DatasetSpec(
        name="vg-folder",
        version=1,
        splits=("train", "val", "test"),
        load=f"{_FORMATS}.datasets_vg:load_vg_folder",
        protocols=_protocols("vg-folder"),
        provides=frozenset({"train"}),
        paper="Berton et al., Deep Visual Geo-localization Benchmark, CVPR 2022",
        license="the terms of the dataset that was converted",
        summary="Any datasets_vg folder: images/<split>/{database,queries}/@east@north@...@.jpg",
    )
    yield DatasetSpec(
        name="vprbench-folder",
        version=1,
        splits=("test",),
        load=f"{_FORMATS}.vprbench:load_vprbench_folder",
        protocols=_protocols("vprbench-folder"),
        paper="Zaffar et al., VPR-Bench, IJCV 2021",
        license="the terms in the dataset's ReadMe.txt",
        summary="A VPR-Bench folder: ref/, query/, ground_truth_new.npy (e.g. corridor)",
    )
    yield DatasetSpec(
        name="nordland-1f",
        version=1,
        splits=("test",),
        load=f"{_FORMATS}.vprbench:load_nordland_1f",
        protocols=_protocols("nordland-1f"),
        paper="Skrede, Nordland dataset (2013); split and ground truth of VPR-Bench (IJCV 2021)",
        license="CC BY 3.0 (Nordland ReadMe.txt)",
        summary="VPR-Bench's Nordland folder: 27 592 refs, 2 760 queries, +-1 frame ground truth",
    )
    yield DatasetSpec(
        name="csv-folder",
        version=1,
        splits=("test",),
        load=f"{_FORMATS}.csv_list:load_csv_folder",
        protocols=_protocols("csv-folder"),
        provides=frozenset({"conditions"}),
        license="your own data",
        summary="Your own images: database.csv + queries.csv (path,easting,northing[,condition])",
    )


@hookimpl
def vpr_bench_datasets() -> Iterator[DatasetSpec]:
    """Register the built-in datasets and the embedded synthetic city."""
    from vpr_bench.data.synthcity.spec import SYNTHCITY

    yield from _builtin_specs()
    yield SYNTHCITY
