from __future__ import annotations

from pathlib import Path

import pytest
from record_factory import make_record

from vpr_bench.leaderboard.collect import records_frame
from vpr_bench.leaderboard.plots import plan_plots, section_plots


def _rows(tmp_path: Path, **kwargs: object) -> object:
    record = make_record(**kwargs)  # type: ignore[arg-type]
    return records_frame([(tmp_path / "r.json", record)])


def test_plan_follows_the_data(tmp_path: Path) -> None:
    full = _rows(tmp_path, per_condition={"night": {"R@1": 40.0}})
    assert [k for k, _ in plan_plots(full)] == ["recall", "conditions", "speed"]
    cached = _rows(tmp_path, images_per_s=0.0)
    assert [k for k, _ in plan_plots(cached)] == ["recall"]


def test_plots_are_deterministic_svg_and_png_without_injection(tmp_path: Path) -> None:
    rows = _rows(tmp_path, method="<script>$x$", images_per_s=0.0)
    first = section_plots(rows, "stem", "bench <b>")
    second = section_plots(rows, "stem", "bench <b>")
    assert sorted(first) == ["plots/stem.recall.png", "plots/stem.recall.svg"]
    assert first == second
    svg = first["plots/stem.recall.svg"].decode("utf-8")
    assert "<script" not in svg and "<b>" not in svg and "<dc:date>" not in svg
    assert "&lt;script&gt;$x$" in svg  # the label is drawn literally, not as math
    png = first["plots/stem.recall.png"]
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and b"Software" not in png


def test_only_the_best_rows_are_drawn_and_the_title_says_so(tmp_path: Path) -> None:
    records = [
        (tmp_path / f"{i}.json", make_record(method=f"m{i:02d}", metrics={"R@1": 50.0 + i}))
        for i in range(12)
    ]
    rows = records_frame(records).sort_values("R@1", ascending=False)
    svg = section_plots(rows, "s", "b")["plots/s.recall.svg"].decode("utf-8")
    assert "best 10 of 12" in svg
    assert "m11.run1" in svg and "m02.run1" in svg and "m01.run1" not in svg


def test_recall_curve_ignores_recall_at_full_precision(tmp_path: Path) -> None:
    # The harness records R@100P (recall at 100 % precision) beside R@N; it is not a point of
    # the R@N curve and must not break it.
    metrics = {"R@1": 30.0, "R@5": 50.0, "R@100P": 1.3, "PR-AUC": 12.0, "mAP@5": 20.0}
    rows = _rows(tmp_path, metrics=metrics, images_per_s=0.0)
    files = section_plots(rows, "stem", "bench")
    assert "plots/stem.recall.svg" in files


def _tick_problems(fig: object) -> list[str]:
    """Tick labels that show raw mathtext (``$``) or overlap a neighbour, on every axis."""
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    problems = []
    for ax in fig.axes:  # type: ignore[attr-defined]
        for axis in (ax.xaxis, ax.yaxis):
            labels = [t for t in axis.get_ticklabels(which="both") if t.get_visible()]
            labels = [t for t in labels if t.get_text()]
            problems += [f"raw mathtext {t.get_text()!r}" for t in labels if "$" in t.get_text()]
            boxes = [(t.get_window_extent(renderer), t.get_text()) for t in labels]
            for i, (box, text) in enumerate(boxes):
                for other, other_text in boxes[i + 1 :]:
                    if box.overlaps(other):
                        problems.append(f"{text!r} overlaps {other_text!r}")
    return problems


@pytest.mark.parametrize(
    "speeds",
    [(280.0, 750.0), (744.6,), (3.0, 45000.0), (0.5, 2.0e9)],
    ids=["narrow", "one-point", "wide", "very-wide"],
)
def test_every_plot_kind_has_readable_tick_labels(
    tmp_path: Path, speeds: tuple[float, ...]
) -> None:
    """No tick label of any plot kind is raw mathtext or overlaps another (the speed plot's
    log axis printed ``$\\mathdefault{2.8\\times10^{2}}$`` labels on top of each other)."""
    from vpr_bench.leaderboard.plots import section_figures

    records = [
        (
            tmp_path / f"{i}.json",
            make_record(
                method=f"m{i}",
                images_per_s=speed,
                per_condition={"night": {"R@1": 20.0 + i}, "day": {"R@1": 60.0 - i}},
            ),
        )
        for i, speed in enumerate(speeds)
    ]
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    rows = records_frame(records)
    kinds = []
    for kind, fig in section_figures(rows, "synthcity-test"):  # drawn in the pages' style
        FigureCanvasAgg(fig).draw()
        assert _tick_problems(fig) == [], kind
        (ax,) = fig.axes
        legend = ax.get_legend().get_window_extent()
        assert not legend.overlaps(ax.get_window_extent()), f"{kind}: legend over the data"
        assert legend.x0 >= 0 and legend.y0 >= 0, f"{kind}: legend cut off"
        kinds.append(kind)
    assert kinds == ["recall", "conditions", "speed"]


def test_log_ticks_are_a_readable_series() -> None:
    from vpr_bench.leaderboard.plots import log_ticks

    assert log_ticks(280.0, 750.0)[1] == [200.0, 500.0, 1000.0]
    assert log_ticks(744.6, 744.6)[1] == [500.0, 1000.0]
    assert log_ticks(30.0, 4500.0)[1] == [20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0]
    assert log_ticks(3.0, 45000.0)[1] == [10.0, 100.0, 1000.0, 10000.0]  # > 4 decades: powers
    assert log_ticks(1.0, 1.0e13)[1][:3] == [10.0, 1000.0, 100000.0]  # > 12 decades: every other
