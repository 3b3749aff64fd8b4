"""Leaderboards: result records -> markdown tables and plots, generated and checked.

Public entry points (pandas and matplotlib are imported only when these run):

- :func:`build_leaderboards` (records folder -> generated files as bytes, nothing written),
  :func:`write_outputs` and :func:`stale_files` (write them, or list what is out of date);
- :func:`collect_records` and :func:`records_frame` (records -> pandas DataFrame);
- :func:`render_benchmark` (rows -> one markdown page), :func:`section_plots` (rows -> plots);
- :func:`escape_markdown_cell` (make plugin-supplied text safe in markdown).
"""

from __future__ import annotations

from vpr_bench.leaderboard.build import (
    DEFAULT_COMMAND,
    BuildResult,
    build_leaderboards,
    stale_files,
    write_outputs,
)
from vpr_bench.leaderboard.collect import Collection, RecordProblem, collect_records, records_frame
from vpr_bench.leaderboard.escape import escape_markdown_cell, safe_stem
from vpr_bench.leaderboard.paper import PaperEntry, add_paper_rows, paper_entries
from vpr_bench.leaderboard.plots import plan_plots, section_plots
from vpr_bench.leaderboard.render import GENERATED_MARKER, render_benchmark

__all__ = [
    "DEFAULT_COMMAND",
    "GENERATED_MARKER",
    "BuildResult",
    "Collection",
    "PaperEntry",
    "RecordProblem",
    "add_paper_rows",
    "build_leaderboards",
    "collect_records",
    "escape_markdown_cell",
    "paper_entries",
    "plan_plots",
    "records_frame",
    "render_benchmark",
    "safe_stem",
    "section_plots",
    "stale_files",
    "write_outputs",
]
