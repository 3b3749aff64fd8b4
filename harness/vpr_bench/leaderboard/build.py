"""Build every leaderboard page (and its plots) from a records folder, write or check them.

:func:`build_leaderboards` returns the generated files as bytes without touching the disk, so
``--check`` can compare them with what is committed and write nothing;
:func:`write_outputs` writes them atomically and removes generated files whose records are gone.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from vpr_bench.atomic import NO_SPACE, atomic_write_many
from vpr_bench.errors import VprBenchError
from vpr_bench.leaderboard.collect import (
    RecordProblem,
    collect_records,
    records_frame,
)
from vpr_bench.leaderboard.escape import safe_stem
from vpr_bench.leaderboard.paper import add_paper_rows, paper_entries
from vpr_bench.leaderboard.plots import plan_plots, section_plots
from vpr_bench.leaderboard.render import (
    GENERATED_MARKER,
    render_benchmark,
    section_stem,
    table_sections,
)
from vpr_bench.leaderboard.seeds import group_seeds

if TYPE_CHECKING:
    from vpr_bench.registry import Registries

__all__ = [
    "DEFAULT_COMMAND",
    "BuildResult",
    "build_leaderboards",
    "generated_files_on_disk",
    "stale_files",
    "write_outputs",
]

logger = logging.getLogger(__name__)

DEFAULT_COMMAND = "vpr-bench leaderboard build"
PLOT_SUFFIXES = (".svg", ".png")


@dataclass
class BuildResult:
    """What a build produced.

    Attributes:
        files: ``{path relative to the output folder: content}``, e.g. ``"synthcity.md"`` and
            ``"plots/<stem>.recall.svg"``.
        problems: Record files that could not be used (each names its file).
        shown: Number of records on the pages.
        hidden: Number of records left out because ``leaderboard=False``.
        plots: Whether plots were built (and so are covered by checks and clean-up).
        html: Whether the static site (``site/``) was built (likewise).
    """

    files: dict[str, bytes] = field(default_factory=dict)
    problems: list[RecordProblem] = field(default_factory=list)
    shown: int = 0
    hidden: int = 0
    plots: bool = True
    html: bool = False


def build_leaderboards(
    records_dir: Path,
    registries: Registries | None = None,
    *,
    command: str = DEFAULT_COMMAND,
    plots: bool = True,
    html_dir: Path | None = None,
) -> BuildResult:
    """Generate one markdown page per benchmark (and its plots) from the records.

    Args:
        records_dir: The records root
            (``<benchmark>/<method>.<tag>/<dataset>.<split>.<data>.json``).
        registries: Where paper rows (``MethodSpec.paper``, ``Checkpoint.reported``) and
            dataset names come from; None: no paper rows, † by the name rule only. The CLI
            passes ``PluginManager().registries()``; tests pass hand-built registries.
        command: The command named in each page's header as the way to regenerate it.
        plots: Also render the plots (the markdown is the same either way).
        html_dir: Also build the static site (:mod:`vpr_bench.leaderboard.html`) for this
            output folder (its record links are relative to ``<html_dir>/site``); None: no site.

    Returns:
        The generated files (nothing is written) and the problems found.

    Raises:
        UsageError: ``records_dir`` is not a folder.
    """
    collection = collect_records(records_dir)
    result = BuildResult(
        problems=list(collection.problems),
        shown=len(collection.shown),
        hidden=sum(collection.hidden.values()),
        plots=plots,
        html=html_dir is not None,
    )
    resolve = None
    entries = []
    if registries is not None:
        reg = registries

        def resolve(name: str) -> str:
            return reg.dataset_split(name)[0].name

        entries = paper_entries(registries.methods)
    frame = add_paper_rows(group_seeds(records_frame(collection.shown, resolve)), entries, resolve)
    for benchmark in collection.benchmarks():
        rows = frame[frame["benchmark"] == benchmark] if len(frame) else frame
        page = render_benchmark(
            benchmark,
            rows,
            hidden=collection.hidden.get(benchmark, 0),
            command=command,
            plan_plots=plan_plots,
        )
        result.files[f"{safe_stem(benchmark)}.md"] = page.encode("utf-8")
        if plots and len(rows):
            for section, table_rows in table_sections(rows):
                title = (
                    f"{benchmark} · {section['protocol_name']}@v{int(section['protocol_version'])}"
                )
                result.files.update(section_plots(table_rows, section_stem(section), title))
    if html_dir is not None:
        from vpr_bench.leaderboard.html import SITE_DIR, render_site

        site = render_site(
            frame,
            collection.benchmarks(),
            site_dir=Path(html_dir) / SITE_DIR,
            command=command,
            plan_plots=plan_plots if plots else None,
        )
        result.files.update({name: text.encode("utf-8") for name, text in site.items()})
    return result


def generated_files_on_disk(out_dir: Path, plots: bool, html: bool = False) -> set[str]:
    """Files in ``out_dir`` a build owns: generated pages, plots and (``html``) the site.

    Pages are owned when they start with the generated marker; the site's pages, script and
    style when ``html`` is set. Hand-written files (``README.md``) never start with the marker
    and are never touched.
    """
    found: set[str] = set()
    out = Path(out_dir)
    if not out.is_dir():
        return found
    for page in sorted(out.glob("*.md")):
        try:
            with page.open(encoding="utf-8") as handle:
                first = handle.readline().rstrip("\n")
        except (OSError, UnicodeDecodeError):
            continue
        if first == GENERATED_MARKER:
            found.add(page.name)
    if plots and (out / "plots").is_dir():
        for plot in sorted((out / "plots").iterdir()):
            if plot.is_file() and plot.suffix in PLOT_SUFFIXES:
                found.add(f"plots/{plot.name}")
    if html:
        from vpr_bench.leaderboard.html import site_files_on_disk

        found |= site_files_on_disk(out)
    return found


def stale_files(out_dir: Path, result: BuildResult) -> list[str]:
    """Files that differ from what the records generate: changed, missing, or obsolete.

    Only what the records determine is compared: the regenerate command named in a page's
    header (``vpr-bench leaderboard build --records ...``, or the default one that
    ``vpr-bench run --leaderboards DIR`` writes) does not make a page stale.

    Returns:
        Sorted relative paths, each with a reason, e.g. ``"synthcity.md (differs)"``.
    """
    out = Path(out_dir)
    stale: list[str] = []
    for name, content in sorted(result.files.items()):
        path = out / name
        if not path.is_file():
            stale.append(f"{name} (missing)")
        elif _records_content(path.read_bytes()) != _records_content(content):
            stale.append(f"{name} (differs)")
    for name in sorted(generated_files_on_disk(out, result.plots, result.html) - set(result.files)):
        stale.append(f"{name} (no longer generated; would be removed)")
    return stale


_REGENERATE = re.compile(rb"(Regenerate with )[^\n]*?( \(see README\.md in this folder)")


def _records_content(content: bytes) -> bytes:
    """``content`` with the regenerate command of a page header blanked (plots pass as is)."""
    return _REGENERATE.sub(rb"\1<command>\2", content, count=1)


def write_outputs(out_dir: Path, result: BuildResult) -> tuple[list[str], list[str]]:
    """Write the generated files that changed, all or none; then drop obsolete ones.

    Every changed file is written in full beside its target before any is renamed into place
    (:func:`~vpr_bench.atomic.atomic_write_many`), so a full disk changes no page.

    Returns:
        ``(written, removed)``: sorted relative paths.

    Raises:
        VprBenchError: A file cannot be written (full disk, read-only folder); the message
            names it, and no file in ``out_dir`` was changed.
    """
    out = Path(out_dir)
    written: list[str] = []
    changed: dict[Path, bytes] = {}
    for name, content in sorted(result.files.items()):
        path = out / name
        if path.is_file() and path.read_bytes() == content:
            continue
        changed[path] = content
        written.append(name)
    try:
        atomic_write_many(changed)
    except OSError as exc:
        fix = (
            "Free disk space or pass another --out"
            if exc.errno in NO_SPACE
            else "Pass an --out folder you can write to"
        )
        raise VprBenchError(
            f"Cannot write {exc.filename or out}: {exc.strerror or exc}; no leaderboard file in "
            f"{out} was changed. {fix}, then build again."
        ) from exc
    removed = sorted(generated_files_on_disk(out, result.plots, result.html) - set(result.files))
    for name in removed:
        (out / name).unlink()
    logger.info("wrote %d files, removed %d", len(written), len(removed))
    return written, removed
