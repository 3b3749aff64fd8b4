"""DaCo's published numbers and released weights (DaCo README; methods.md B.6).

HEAD README (APIN 2023, 451e13d) tables are the paper rows; the ICMR 2021 README (c44530b)
tables are kept as the variant ``"ICMR 2021"``. Each row is one protocol: A->B
(``daco-<data>-ab``), B->A (``-ba``) and A<->B (``-cross``), R@1/2/4/8 in percent; the numbers
are val numbers at the epoch selected on that val set (methods.md B.5).
"""

from __future__ import annotations

from vpr_bench import Checkpoint, PaperResult, RemoteFile

__all__ = ["CHECKPOINTS", "DATA", "METHODS", "paper_rows"]

METHODS = ("npid", "moco", "simclr", "simsiam", "daco")
DATA = ("tokyo", "cityscapes", "synthia")
_RANKS = (1, 2, 4, 8)
_PROTOCOLS = ("ab", "ba", "cross")

_HEAD_TABLE = """
tokyo      npid    6.67/10.67/17.33/28.00  8.00/12.00/16.00/21.33  2.00/4.00/5.33/10.67
tokyo      moco    5.33/6.67/12.00/17.33   6.67/9.33/12.00/16.00   0.00/0.00/0.00/0.67
tokyo      simclr  25.33/32.00/45.33/56.00 33.33/37.33/46.67/58.67 8.67/9.33/14.00/18.67
tokyo      simsiam 4.00/5.33/9.33/16.00    4.00/5.33/6.67/14.67    1.33/1.33/1.33/3.33
tokyo      daco    61.33/68.00/78.67/84.00 60.00/70.67/81.33/88.00 45.33/56.67/64.00/74.67
cityscapes npid    5.60/7.80/10.20/17.20   5.20/8.40/12.60/19.80   0.20/0.50/0.70/1.00
cityscapes moco    0.40/0.80/1.40/3.00     0.40/0.80/1.80/3.40     0.20/0.20/0.20/0.20
cityscapes simclr  34.60/48.00/59.60/71.40 54.60/66.80/78.40/86.00 0.50/1.00/1.70/2.90
cityscapes simsiam 0.60/1.00/1.60/2.40     0.80/1.00/1.80/2.80     0.00/0.00/0.00/0.00
cityscapes daco    98.80/99.60/99.80/100.0 98.60/99.20/99.40/99.80 90.20/96.00/98.60/99.20
synthia    npid    8.33/10.00/11.67/20.00  6.67/6.67/18.33/21.67   5.00/5.00/10.00/11.67
synthia    moco    5.00/5.00/8.33/16.67    10.00/15.00/16.67/25.00 1.67/1.67/1.67/3.33
synthia    simclr  23.33/30.00/46.67/51.67 25.00/33.33/48.33/63.33 6.67/10.83/16.67/20.83
synthia    simsiam 10.00/13.33/15.00/23.33 5.00/10.00/21.67/30.00  3.33/5.00/6.67/8.33
synthia    daco    55.00/68.33/75.00/88.33 41.67/51.67/70.00/83.33 25.00/34.17/50.00/66.67
"""
"""HEAD README tables (methods.md B.6): A->B, B->A, A<->B, each R@1/2/4/8."""

_ICMR_TABLE = """
tokyo      npid    8.00/9.33/10.67/14.67   8.00/9.33/10.67/12.00   3.33/6.00/6.67/8.00
tokyo      moco    5.33/5.33/8.00/17.33    6.67/8.00/12.00/21.33   0.00/0.00/0.00/0.67
tokyo      simclr  29.33/33.33/45.33/58.67 32.00/40.00/46.67/57.33 6.00/10.00/14.00/20.00
tokyo      daco    69.33/73.33/81.33/88.00 65.33/80.00/85.33/90.67 52.00/60.67/73.33/81.33
cityscapes npid    34.20/46.00/55.20/64.80 38.40/46.60/58.00/68.80 4.20/6.00/7.90/11.90
cityscapes moco    0.40/0.80/1.00/2.20     0.40/0.60/1.00/1.80     0.00/0.00/0.10/0.10
cityscapes simclr  43.00/55.60/67.20/76.60 69.40/80.40/89.20/94.00 2.30/3.70/5.20/7.80
cityscapes daco    96.40/99.00/99.60/99.80 95.60/97.80/99.40/99.80 47.70/65.30/80.10/91.00
synthia    npid    6.67/6.67/8.33/11.67    5.00/6.67/8.33/13.33    2.50/5.00/5.00/6.67
synthia    moco    10.00/11.67/21.67/26.67 10.00/11.67/18.33/33.33 1.67/2.50/2.50/5.00
synthia    simclr  25.00/35.00/40.00/53.33 20.00/26.67/41.67/48.33 6.67/9.17/15.83/24.17
synthia    daco    46.67/66.67/75.00/88.33 45.00/50.00/70.00/86.67 28.33/39.17/50.00/67.50
"""
"""ICMR 2021 README tables at c44530b (no SimSiam there)."""

_HEAD_SOURCE = "DaCo README (APIN 2023, 451e13d), Benchmarks tables; methods.md B.6"
_ICMR_SOURCE = "DaCo README at c44530b (ICMR 2021), Benchmarks tables; methods.md B.6"


def _parse(table: str) -> dict[tuple[str, str], tuple[tuple[float, ...], ...]]:
    """``data method ab ba cross`` lines, each protocol ``R@1/R@2/R@4/R@8``."""
    out: dict[tuple[str, str], tuple[tuple[float, ...], ...]] = {}
    for line in table.strip().splitlines():
        data, method, *protocols = line.split()
        out[(data, method)] = tuple(tuple(float(v) for v in p.split("/")) for p in protocols)
    return out


_HEAD = _parse(_HEAD_TABLE)
_ICMR = _parse(_ICMR_TABLE)


def paper_rows(method: str) -> tuple[PaperResult, ...]:
    """The published rows of ``method``: HEAD as the paper, ICMR as variant ``"ICMR 2021"``."""
    rows: list[PaperResult] = []
    for table, source, variant in (
        (_HEAD, _HEAD_SOURCE, "APIN 2023 (HEAD: ResNet-50 from scratch, 2048-d head, 10k iters)"),
        (_ICMR, _ICMR_SOURCE, "ICMR 2021"),
    ):
        for data in DATA:
            values = table.get((data, method))
            if values is None:
                continue
            for protocol, numbers in zip(_PROTOCOLS, values, strict=True):
                metrics = {f"R@{r}": v for r, v in zip(_RANKS, numbers, strict=True)}
                rows.append(PaperResult(f"daco-{data}-{protocol}", metrics, source, variant))
    return tuple(rows)


_BAIDU: dict[tuple[str, str], tuple[str, str]] = {
    ("tokyo", "npid"): ("1Y9shBKadeBhkifopHexioA", "r2bg"),
    ("tokyo", "moco"): ("1fiTNcm0HV29SExI6ASykPQ", "f2jt"),
    ("tokyo", "simclr"): ("1yZhkba1EU79LwqgizDzTUA", "agdw"),
    ("tokyo", "simsiam"): ("1EG0Rm-gkqTviFcR8qBcHlQ", "d2i4"),
    ("tokyo", "daco"): ("139IHtS2_tOZcEK2Qgt-yQw", "5dzs"),
    ("cityscapes", "npid"): ("1oUbOqWIJaJbtUDqcqmklgw", "bbiv"),
    ("cityscapes", "moco"): ("1iR0_2kL9wq44mKM_-sfr_w", "ma2a"),
    ("cityscapes", "simclr"): ("1ogY5eC1eb3IHemOsVO-ieg", "hdhn"),
    ("cityscapes", "simsiam"): ("1OKTifWGiCf3eBzDp8iZcuQ", "dau5"),
    ("cityscapes", "daco"): ("1ForxWPJ_k3Eq_EXgLtpHCA", "azvx"),
    ("synthia", "npid"): ("1zpzPy9UvB9K3k4l0j0zF5w", "bgua"),
    ("synthia", "moco"): ("1GFo1RrNufn3WeLHLxrJafA", "sw7f"),
    ("synthia", "simclr"): ("1l5D86pAkI9duvDH_AQOZVQ", "afeg"),
    ("synthia", "simsiam"): ("1ePQ51BRDNCykDQXMVlz6vw", "bjnj"),
    ("synthia", "daco"): ("1PHednJb8PQ2FVb6Ht8jJTg", "sasq"),
}
"""Baidu Netdisk share ids and extraction codes (DaCo README, HEAD, lines 130-414)."""


def _checkpoint(method: str, data: str) -> Checkpoint:
    share, code = _BAIDU[(data, method)]
    return Checkpoint(
        tag=f"{method}-{data}",
        file=RemoteFile(f"https://pan.baidu.com/s/{share}?pwd={code}"),
        trained_on=f"daco-{data}-train",
        overrides={"model.backbone": "resnet50", "model.normalizer": data},
        reported=tuple(r for r in paper_rows(method) if r.dataset.startswith(f"daco-{data}-")),
        license="no licence stated in the DaCo repository",
        filename=f"{data}_{method}_model.pth",
        load="vpr_bench_daco.weights:load_daco_weights",
    )


CHECKPOINTS: dict[str, tuple[Checkpoint, ...]] = {
    method: tuple(_checkpoint(method, data) for data in DATA) for method in METHODS
}
"""Released weights per method: tags ``<method>-<data>``, Baidu pages (no sha256 published)."""
