"""Deterministic leaderboard plots (matplotlib, Agg): R@N curves, per-condition bars, recall/speed.

Each table of a leaderboard page gets up to three plots, rendered to SVG and PNG bytes in
memory. The figure size, dpi, fonts and SVG hash salt are fixed and the date/software metadata
is stripped, so rebuilding from the same records with the same matplotlib gives the same bytes.
Labels are drawn literally (``text.parse_math`` off), so a ``$`` in a method name is not math.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from vpr_bench.leaderboard.collect import metric_sort_key
from vpr_bench.leaderboard.paper import PRIMARY_METRIC

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["FIGSIZE", "log_ticks", "plan_plots", "row_label", "section_figures", "section_plots"]

FIGSIZE = (7.0, 4.2)
DPI = 100
_RC: dict[str, Any] = {
    "figure.figsize": FIGSIZE,
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    "font.family": "DejaVu Sans",
    "font.size": 9.0,
    "svg.fonttype": "path",
    "svg.hashsalt": "vpr-bench-leaderboard",
    "text.parse_math": False,
    "path.simplify": True,
}
MAX_OURS = 10
"""Plots draw our best ``MAX_OURS`` rows (by R@1) and at most ``MAX_PAPER`` paper rows."""
MAX_PAPER = 4
_PNG_METADATA = {"Software": None}
_SVG_METADATA = {"Date": None, "Creator": None}


_RECALL_AT_N = re.compile(r"^R@\d+$")
"""R@N columns (not ``R@100P``, recall at 100 % precision)."""


def _recall_ns(rows: pd.DataFrame) -> list[str]:
    return sorted(
        (c for c in rows.columns if _RECALL_AT_N.match(c) and rows[c].notna().any()),
        key=metric_sort_key,
    )


def _ours(rows: pd.DataFrame) -> pd.DataFrame:
    return rows[rows["kind"] == "ours"]


def _drawn(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows a plot draws: the first ``MAX_OURS`` of ours and ``MAX_PAPER`` paper rows."""
    import pandas as pd

    paper = rows[rows["kind"] == "paper"]
    return pd.concat([_ours(rows).head(MAX_OURS), paper.head(MAX_PAPER)])


def plan_plots(rows: pd.DataFrame) -> list[tuple[str, str]]:
    """Which plots a table gets, as ``[(kind, title), ...]``, decided from the data alone.

    ``recall`` when our rows have R@N values, ``conditions`` when any of them has
    per-condition results, ``speed`` when any has a measured extraction throughput.
    """
    ours = _ours(rows)
    plans: list[tuple[str, str]] = []
    if len(ours) and _recall_ns(ours):
        plans.append(("recall", "R@N curves"))
    if len(ours) and any(bool(pc) for pc in ours["per_condition"]):
        plans.append(("conditions", f"{PRIMARY_METRIC} per condition"))
    if len(ours) and PRIMARY_METRIC in ours and (ours["images_per_s"] > 0).any():
        plans.append(("speed", f"{PRIMARY_METRIC} against extraction speed"))
    return plans


def row_label(row: Any) -> str:
    """``method.checkpoint`` plus the profile when there is one: a row's name in a legend."""
    label = f"{row['method']}.{row['checkpoint'] or 'untrained'}"
    return f"{label} ({row['profile']})" if row["profile"] else label


@contextmanager
def _style() -> Iterator[Any]:
    import matplotlib
    import matplotlib.style
    from matplotlib.figure import Figure

    # The defaults first (so a user's matplotlibrc cannot change the bytes), then ours.
    with matplotlib.style.context("default"), matplotlib.rc_context(_RC):  # type: ignore[arg-type]
        yield Figure


def _save(fig: Any, stem: str, kind: str) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for fmt, metadata in (("svg", _SVG_METADATA), ("png", _PNG_METADATA)):
        buffer = io.BytesIO()
        fig.savefig(buffer, format=fmt, metadata=metadata)
        out[f"plots/{stem}.{kind}.{fmt}"] = buffer.getvalue()
    return out


def section_plots(rows: pd.DataFrame, stem: str, title: str) -> dict[str, bytes]:
    """Render the plots :func:`plan_plots` names for one table.

    Args:
        rows: The table's rows, sorted as on the page (their order sets colours and legends);
            only the best :data:`MAX_OURS` of ours and :data:`MAX_PAPER` paper rows are drawn.
        stem: File-name stem (see :func:`vpr_bench.leaderboard.render.section_stem`).
        title: Figure title, drawn literally.

    Returns:
        ``{"plots/<stem>.<kind>.svg": bytes, "plots/<stem>.<kind>.png": bytes, ...}``.
    """
    files: dict[str, bytes] = {}
    for kind, fig in section_figures(rows, title):
        files.update(_save(fig, stem, kind))
    return files


def section_figures(rows: pd.DataFrame, title: str) -> Iterator[tuple[str, Any]]:
    """The figures of :func:`section_plots`, laid out but not saved: ``(kind, Figure)`` pairs.

    Tests read their tick labels and extents from these.
    """
    drawers = {"recall": _recall, "conditions": _conditions, "speed": _speed}
    with _style() as figure_cls:
        for kind, plot_title in plan_plots(rows):
            fig = figure_cls()  # a bare Figure: no pyplot, no global state, Agg rendering
            ax = fig.subplots()
            drawers[kind](ax, _drawn(rows))
            n_ours = len(_ours(rows))
            shown = f" (best {MAX_OURS} of {n_ours})" if n_ours > MAX_OURS else ""
            ax.set_title(_short(f"{title}: {plot_title}{shown}", 100))
            fig.tight_layout()
            yield kind, fig


def _recall(ax: Any, rows: pd.DataFrame) -> None:
    columns = _recall_ns(rows)
    ns = [int(c.partition("@")[2]) for c in columns]
    for index, (_, row) in enumerate(rows.iterrows()):
        points = [(n, row[c]) for n, c in zip(ns, columns, strict=True) if not _nan(row[c])]
        if not points:
            continue
        xs, ys = zip(*points, strict=True)
        paper = row["kind"] == "paper"
        label = row_label(row) if not paper else f"{row['method']} (paper: {row['source']})"
        ax.plot(
            xs,
            ys,
            linestyle="--" if paper else "-",
            marker="x" if paper else "o",
            color=f"C{index % 10}",
            label=_short(label),
        )
    ax.set_xscale("log")
    ax.set_xticks(ns)
    ax.set_xticklabels([str(n) for n in ns])
    _no_minor_labels(ax)
    ax.set_xlabel("N")
    ax.set_ylabel("R@N (%)")
    ax.grid(True, alpha=0.3)
    _legend_below(ax)


def _conditions(ax: Any, rows: pd.DataFrame) -> None:
    ours = _ours(rows)
    conditions = sorted({c for pc in ours["per_condition"] for c in pc})
    width = 0.8 / max(1, len(ours))
    for index, (_, row) in enumerate(ours.iterrows()):
        values = [
            float(row["per_condition"].get(c, {}).get(PRIMARY_METRIC, math.nan)) for c in conditions
        ]
        xs = [i + index * width for i in range(len(conditions))]
        ax.bar(xs, values, width=width, color=f"C{index % 10}", label=_short(row_label(row)))
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(conditions))])
    ax.set_xticklabels([_short(c, 16) for c in conditions])
    ax.set_ylabel(f"{PRIMARY_METRIC} (%)")
    ax.set_ylim(0, 100)
    _legend_below(ax)


def _speed(ax: Any, rows: pd.DataFrame) -> None:
    ours = _ours(rows)
    for index, (_, row) in enumerate(ours.iterrows()):
        if row["images_per_s"] <= 0 or _nan(row.get(PRIMARY_METRIC)):
            continue
        ax.scatter(
            [row["images_per_s"]],
            [row[PRIMARY_METRIC]],
            color=f"C{index % 10}",
            label=_short(f"{row_label(row)} on {row['device']}"),
        )
    speeds = [float(v) for v in ours["images_per_s"] if v > 0]
    _plain_log_x(ax, min(speeds), max(speeds))
    ax.set_xlabel("extraction images/s (log scale)")
    ax.set_ylabel(f"{PRIMARY_METRIC} (%)")
    ax.grid(True, alpha=0.3)
    _legend_below(ax)


def _legend_below(ax: Any) -> None:
    """The legend under the axes, never over a point, a curve or a bar.

    The figure grows by one line per legend row, so the plotting area keeps its height; two
    columns when every label is short enough to share a line.
    """
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return
    columns = 2 if max(len(label) for label in labels) <= 48 else 1
    rows = -(-len(labels) // columns)
    fig = ax.figure
    fig.set_size_inches(FIGSIZE[0], FIGSIZE[1] + 0.16 * rows + 0.2)
    ax.legend(
        handles,
        labels,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.13),
        ncol=columns,
        fontsize=7,
        frameon=False,
    )


def _no_minor_labels(ax: Any) -> None:
    from matplotlib.ticker import NullFormatter

    ax.xaxis.set_minor_formatter(NullFormatter())


def log_ticks(low: float, high: float) -> tuple[tuple[float, float], list[float]]:
    """Axis limits and readable ticks for a log axis spanning the values ``low .. high``.

    The limits pad the data by a factor of 1.6 each side. Ticks are the 1-2-5 series inside them
    (powers of ten only beyond four decades, every other power beyond twelve); with fewer than
    two such ticks, the data's own values (three significant digits) are the ticks.
    """
    lo, hi = low / 1.6, high * 1.6
    decades = math.log10(hi / lo)
    mantissas = (1.0, 2.0, 5.0) if decades <= 4 else (1.0,)
    step = 2 if decades > 12 else 1
    ticks = [
        m * 10.0**e
        for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1, step)
        for m in mantissas
        if lo <= m * 10.0**e <= hi
    ]
    if len(ticks) < 2:
        ticks = sorted({float(f"{v:.3g}") for v in (low, high)})
    return (lo, hi), ticks


def _plain_log_x(ax: Any, low: float, high: float) -> None:
    r"""A log x-axis with plain-number tick labels.

    Matplotlib labels log axes with mathtext (``$\mathdefault{10^{2}}$``), which the pages'
    literal text mode (``text.parse_math`` off, so ``$`` in a method name stays a ``$``) would
    print raw; these labels are plain numbers instead.
    """
    ax.set_xscale("log")
    limits, ticks = log_ticks(low, high)
    ax.set_xlim(*limits)
    ax.set_xticks(ticks)
    ax.set_xticklabels([f"{t:g}" for t in ticks])
    _no_minor_labels(ax)


def _nan(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _short(text: str, limit: int = 60) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
