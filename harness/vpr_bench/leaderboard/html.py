"""The leaderboards as a static site: an index and one page per benchmark, browsable from file://.

``vpr-bench leaderboard build --html`` adds ``site/`` to the output folder:

- ``site/index.html`` lists the benchmarks (tables and rows per benchmark);
- ``site/<benchmark>.html`` holds the same tables as the markdown page, with sortable columns
  (click a header; again to reverse), a filter per protocol and per trained-on dataset, the plots
  inline, and every number of our rows linking to the record it comes from (relative links, so
  the site works from ``file://`` and from any static web server);
- ``site/site.js`` (plain JavaScript, no framework, no network) and ``site/site.css``.

The view's state lives in the URL's fragment, so a sorted or filtered view can be linked:
``synthcity.html#sort=R@1:asc&trained=synthcity-train&protocol=synthcity-test@v1``. Every text
that comes from a record or a plugin is HTML-escaped (:func:`html.escape`, quotes included).
"""

from __future__ import annotations

import html
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vpr_bench.leaderboard.escape import safe_stem
from vpr_bench.leaderboard.paper import PRIMARY_METRIC
from vpr_bench.leaderboard.render import (
    DAGGER,
    PlotPlanner,
    metric_columns,
    protocol_settings,
    section_stem,
    section_title,
    table_sections,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["SITE_DIR", "render_site", "site_files_on_disk"]

SITE_DIR = "site"
"""The site's folder inside the leaderboard output folder."""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _number(value: Any) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _link(target: str, site_dir: Path) -> str:
    """A relative URL from the site folder to ``target`` (a record path), '/'-separated."""
    relative = os.path.relpath(Path(target).resolve(), site_dir.resolve())
    return Path(relative).as_posix()


def _cell(text: str, sort_value: str, *, href: str = "", cls: str = "") -> str:
    body = f'<a href="{_e(href)}">{_e(text)}</a>' if href else _e(text)
    attrs = f' data-value="{_e(sort_value)}"'
    if cls:
        attrs += f' class="{cls}"'
    return f"<td{attrs}>{body}</td>"


def _number_cell(value: float | None, pattern: str, missing: str = "—") -> str:
    if value is None:
        return _cell(missing, "")
    return _cell(pattern.format(value), repr(value))


def _table(rows: pd.DataFrame, site_dir: Path) -> str:
    metrics = metric_columns(rows)
    with_delta = "delta" in rows and rows["delta"].notna().any()
    headers: list[tuple[str, str]] = [("#", "num"), ("method", "text")]
    headers += [("checkpoint / profile", "text"), ("trained on", "text")]
    headers += [(name, "num") for name in metrics]
    if with_delta:
        headers.append((f"Δ {PRIMARY_METRIC}", "num"))
    headers += [("dim", "num"), ("img/s", "num"), ("device", "text"), ("source / versions", "text")]
    head = "".join(
        f'<th scope="col" data-type="{kind}"><button type="button">{_e(name)}</button></th>'
        for name, kind in headers
    )
    body: list[str] = []
    rank = 0
    for _, row in rows.iterrows():
        paper = row["kind"] == "paper"
        if not paper:
            rank += 1
        record = "" if paper else _link(str(row["path"]), site_dir)
        cells = [_cell("paper" if paper else str(rank), "" if paper else str(rank))]
        cells.append(_cell(str(row["method"]), str(row["method"])))
        seeds = row.get("seeds")
        if isinstance(seeds, list) and seeds:
            paths = row.get("seed_paths") or []
            links = ", ".join(
                f'<a href="{_e(_link(str(path), site_dir))}">{int(seed)}</a>'
                for seed, path in zip(seeds, paths, strict=False)
            )
            ident = " / ".join(
                p for p in (str(row["profile"] or ""), str(row["variant"] or "")) if p
            )
            text = f"{len(seeds)} seeds ({links})" + (f" / {_e(ident)}" if ident else "")
            cells.append(f'<td data-value="{len(seeds)} seeds">{text}</td>')
        else:
            parts = [
                str(row["checkpoint"] or ""),
                str(row["profile"] or ""),
                str(row["variant"] or ""),
            ]
            ident = " / ".join(p for p in parts if p) or "—"
            cells.append(_cell(ident, ident))
        trained = str(row["trained_on"] or "")
        shown = (trained or "—") + (f" {DAGGER}" if row["trained_here"] else "")
        cells.append(_cell(shown, trained))
        stds = row.get("stds")
        for name in metrics:
            value = _number(row.get(name))
            if value is None:
                cells.append(_cell("—", ""))
                continue
            text = f"{value:.1f}"
            if isinstance(stds, dict) and name in stds:
                text += f" ± {float(stds[name]):.1f}"
            cells.append(_cell(text, repr(value), href=record, cls="metric"))
        if with_delta:
            delta = _number(row.get("delta"))
            cells.append(_number_cell(delta, "{:+.1f}"))
        dim = _number(row["descriptor_dim"])
        cells.append(_number_cell(dim, "{:.0f}"))
        if paper:
            cells += [_cell("—", ""), _cell("—", "")]
            cells.append(_cell(f"paper: {row['source']}", str(row["source"])))
        else:
            speed = float(row["images_per_s"])
            cells.append(_number_cell(speed if speed > 0 else None, "{:.1f}", "— (cached)"))
            device = str(row["device"] or "unknown device")
            cells.append(_cell(device, device))
            cells.append(_cell(str(row["versions"]), str(row["versions"])))
        kind = "paper" if paper else "ours"
        body.append(f'<tr class="{kind}" data-trained-on="{_e(trained)}">{"".join(cells)}</tr>')
    return (
        '<table class="board"><thead><tr>'
        + head
        + "</tr></thead><tbody>\n"
        + "\n".join(body)
        + "\n</tbody></table>"
    )


def _page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        "<!-- Generated by 'vpr-bench leaderboard build --html'. Do not edit this file. -->\n"
        f"<title>{_e(title)}</title>\n"
        '<link rel="stylesheet" href="site.css">\n'
        '<script src="site.js" defer></script>\n'
        "</head>\n<body>\n"
        f"{body}\n</body>\n</html>\n"
    )


def _options(values: Sequence[str]) -> str:
    return "".join(f'<option value="{_e(v)}">{_e(v)}</option>' for v in values)


def benchmark_page(
    benchmark: str,
    rows: pd.DataFrame,
    *,
    site_dir: Path,
    command: str,
    plan_plots: PlotPlanner | None,
) -> str:
    """The HTML page of one benchmark (see the module docstring)."""
    tables = table_sections(rows)
    protocols = sorted({f"{s['protocol_name']}@v{int(s['protocol_version'])}" for s, _ in tables})
    trained = sorted({str(t) for t in rows["trained_on"] if t}) if len(rows) else []
    parts = [
        '<nav><a href="index.html">All benchmarks</a></nav>',
        f"<h1>Leaderboard: {_e(benchmark)}</h1>",
        "<p>Generated from result records; do not edit. Regenerate with "
        f"<code>{_e(command)} --html</code>. Click a column header to sort (again to reverse). "
        f"{DAGGER}: evaluated on the dataset the weights were trained on. Rows marked "
        "<em>paper</em> are published numbers, not runs; a number of ours links to its record. "
        "A row of n seeds shows the mean ± the standard deviation over its seeds.</p>",
        '<form class="filters" onsubmit="return false">'
        f'<label>Protocol <select id="filter-protocol"><option value="">all</option>'
        f"{_options(protocols)}</select></label> "
        f'<label>Trained on <select id="filter-trained"><option value="">all</option>'
        f"{_options(trained)}</select></label></form>",
    ]
    for section, table_rows in tables:
        protocol = f"{section['protocol_name']}@v{int(section['protocol_version'])}"
        settings, notes = protocol_settings(section["protocol"], str(section["protocol_digest"]))
        anchor = safe_stem(section_stem(section))
        parts.append(f'<section class="table" id="{_e(anchor)}" data-protocol="{_e(protocol)}">')
        parts.append(f"<h2>{_e(section_title(section))}</h2>")
        text = " · ".join(_e(p) for p in settings) + (f". {_e(notes)}" if notes else "")
        parts.append(f'<p class="protocol">Protocol: {text}</p>')
        parts.append(_table(table_rows, site_dir))
        if plan_plots is not None:
            stem = section_stem(section)
            for kind, title in plan_plots(table_rows):
                parts.append(
                    f'<figure><img src="../plots/{_e(stem)}.{_e(kind)}.svg" alt="{_e(title)}">'
                    f"<figcaption>{_e(title)}</figcaption></figure>"
                )
        parts.append("</section>")
    if not len(rows) or not int((rows["kind"] == "ours").sum()):
        parts.append("<p>No records to show yet.</p>")
    return _page(f"Leaderboard: {benchmark}", "\n".join(parts))


def index_page(summaries: Sequence[tuple[str, int, int]], command: str) -> str:
    """The site's index: ``(benchmark, tables, rows of ours)`` per benchmark."""
    items = "".join(
        f'<li><a href="{_e(safe_stem(name))}.html">{_e(name)}</a>: {tables} '
        f"table{'s' if tables != 1 else ''}, {rows} result{'s' if rows != 1 else ''}</li>"
        for name, tables, rows in summaries
    )
    body = (
        "<h1>vpr-bench leaderboards</h1>\n"
        "<p>One page per benchmark; each table holds results made under one evaluation protocol "
        "on one dataset version, so its numbers are comparable. Generated by "
        f"<code>{_e(command)} --html</code>.</p>\n"
        f"<ul>{items}</ul>" + ("" if summaries else "<p>No records yet.</p>")
    )
    return _page("vpr-bench leaderboards", body)


def render_site(
    frame: pd.DataFrame,
    benchmarks: Sequence[str],
    *,
    site_dir: Path,
    command: str,
    plan_plots: PlotPlanner | None,
) -> dict[str, str]:
    """Every file of the site: ``{"site/<name>": text}``.

    Args:
        frame: All rows (ours, seed groups and paper), as the markdown pages get them.
        benchmarks: The benchmarks, one page each (sorted as given).
        site_dir: Where the site will be written (record links are relative to it).
        command: The command that regenerates the leaderboards.
        plan_plots: Which plots each table has (None: no plots on the pages).
    """
    files: dict[str, str] = {}
    summaries: list[tuple[str, int, int]] = []
    for benchmark in benchmarks:
        rows = frame[frame["benchmark"] == benchmark] if len(frame) else frame
        page = benchmark_page(
            benchmark, rows, site_dir=site_dir, command=command, plan_plots=plan_plots
        )
        files[f"{SITE_DIR}/{safe_stem(benchmark)}.html"] = page
        count = len(table_sections(rows))
        ours = int((rows["kind"] == "ours").sum()) if len(rows) else 0
        summaries.append((benchmark, count, ours))
    files[f"{SITE_DIR}/index.html"] = index_page(summaries, command)
    files[f"{SITE_DIR}/site.js"] = _asset("site.js")
    files[f"{SITE_DIR}/site.css"] = _asset("site.css")
    return files


def _asset(name: str) -> str:
    return (Path(__file__).parent / "assets" / name).read_text(encoding="utf-8")


def site_files_on_disk(out_dir: Path) -> set[str]:
    """The files a build owns in ``<out_dir>/site`` (pages, script and style), relative."""
    site = Path(out_dir) / SITE_DIR
    if not site.is_dir():
        return set()
    return {
        f"{SITE_DIR}/{path.name}"
        for path in site.iterdir()
        if path.is_file() and path.suffix in (".html", ".js", ".css")
    }
