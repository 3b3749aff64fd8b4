from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vpr_bench.errors import UsageError
from vpr_bench.eval.visualize import GREEN, GREY, RED, pick_queries, render_grid


def test_pick_queries_spreads_evenly() -> None:
    assert pick_queries(111, 4).tolist() == [0, 37, 73, 110]
    assert pick_queries(3, 10).tolist() == [0, 1, 2]
    assert pick_queries(5, 0).size == 0


def test_grid_frames_hits_green_and_misses_red(tmp_path: Path) -> None:
    paths = []
    for i in range(4):
        paths.append(tmp_path / f"{i}.png")
        Image.new("RGB", (40, 30), (i * 60, 0, 0)).save(paths[-1])
    knn_idx = np.array([[1, 2, 3], [3, 0, 1]])
    positives = (np.array([2]), np.array([3, 1]))
    out = render_grid(
        tmp_path / "g" / "grid.png",
        query_paths=paths[:2],
        db_paths=paths,
        knn_idx=knn_idx,
        positives=positives,
        queries=[0, 1],
        top=2,
        cell=(40, 30),
        border=3,
    )
    grid = Image.open(out).convert("RGB")
    tile_w, tile_h, gap = 40 + 6, 30 + 6 + 14, 6
    assert grid.size == (3 * tile_w + 3 * gap, 2 * (tile_h + gap) + gap)

    def frame(row: int, col: int) -> tuple[int, int, int]:
        return grid.getpixel((gap + col * (tile_w + gap) + 1, gap + row * (tile_h + gap) + 1))

    assert frame(0, 0) == GREY
    assert [frame(0, 1), frame(0, 2)] == [RED, GREEN]  # db 1 miss, db 2 hit
    assert [frame(1, 1), frame(1, 2)] == [GREEN, RED]  # db 3 hit, db 0 miss


def test_grid_rejects_bad_queries(tmp_path: Path) -> None:
    knn = np.zeros((2, 1), dtype=np.int64)
    with pytest.raises(UsageError, match="at least one query"):
        render_grid(
            tmp_path / "a.png", query_paths=[], db_paths=[], knn_idx=knn, positives=(), queries=[]
        )
    with pytest.raises(UsageError, match="outside 0..1"):
        render_grid(
            tmp_path / "a.png", query_paths=[], db_paths=[], knn_idx=knn, positives=(), queries=[5]
        )
