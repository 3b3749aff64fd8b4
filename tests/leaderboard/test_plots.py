from __future__ import annotations

from pathlib import Path

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
