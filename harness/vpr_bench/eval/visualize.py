"""Retrieval grids: each row a query and its top-K database images, framed green or red.

A green frame marks a retrieved image that is a positive of the query, a red frame one that
is not; the query has a grey frame. Rendered with Pillow and written atomically as PNG.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vpr_bench.atomic import atomic_write_bytes
from vpr_bench.errors import UsageError

__all__ = ["pick_queries", "render_grid"]

GREEN = (40, 170, 60)
RED = (210, 40, 40)
GREY = (120, 120, 120)
BACKGROUND = (255, 255, 255)


def pick_queries(n_queries: int, count: int) -> np.ndarray:
    """``count`` query indices spread evenly over ``0 .. n_queries - 1`` (all when fewer)."""
    if count <= 0 or n_queries <= 0:
        return np.zeros(0, dtype=np.int64)
    if count >= n_queries:
        return np.arange(n_queries, dtype=np.int64)
    return np.unique(np.linspace(0, n_queries - 1, count).round().astype(np.int64))


def _thumbnail(path: Path, size: tuple[int, int]) -> object:
    from PIL import Image, ImageDraw

    try:
        with Image.open(path) as image:
            thumb = image.convert("RGB")
    except OSError:
        thumb = Image.new("RGB", size, (200, 200, 200))
        ImageDraw.Draw(thumb).text((4, 4), "missing", fill=(0, 0, 0))
        return thumb
    thumb.thumbnail(size)
    canvas = Image.new("RGB", size, BACKGROUND)
    canvas.paste(thumb, ((size[0] - thumb.width) // 2, (size[1] - thumb.height) // 2))
    return canvas


def render_grid(
    out_path: Path,
    *,
    query_paths: Sequence[Path],
    db_paths: Sequence[Path],
    knn_idx: np.ndarray,
    positives: Sequence[np.ndarray],
    queries: Sequence[int],
    top: int = 5,
    cell: tuple[int, int] = (160, 120),
    border: int = 5,
) -> Path:
    """Render a retrieval grid PNG and return its path.

    Args:
        out_path: The PNG to write (atomically).
        query_paths: All query images.
        db_paths: All database images.
        knn_idx: ``[Q, K]`` ranking.
        positives: Positive database indices per query.
        queries: Which queries to show, one row each.
        top: Retrieved images per row (at most ``K``).
        cell: ``(width, height)`` of one thumbnail.
        border: Frame width in pixels.

    Raises:
        UsageError: No query to show, or a query index out of range.
    """
    from PIL import Image, ImageDraw

    if len(queries) == 0:
        raise UsageError("A retrieval grid needs at least one query (--save-grid N with N >= 1).")
    n_q = knn_idx.shape[0]
    bad = [q for q in queries if not 0 <= int(q) < n_q]
    if bad:
        raise UsageError(f"Grid query index {bad[0]} is outside 0..{n_q - 1}.")
    top = min(top, knn_idx.shape[1])
    label_h = 14
    width, height = cell
    tile_w, tile_h = width + 2 * border, height + 2 * border + label_h
    gap = 6
    grid = Image.new(
        "RGB",
        ((top + 1) * tile_w + top * gap + gap, len(queries) * (tile_h + gap) + gap),
        BACKGROUND,
    )
    draw = ImageDraw.Draw(grid)
    for row, q in enumerate(int(q) for q in queries):
        y = gap + row * (tile_h + gap)
        pos = {int(p) for p in positives[q]}
        tiles: list[tuple[Path, tuple[int, int, int], str]] = [
            (Path(query_paths[q]), GREY, f"query {q}")
        ]
        for rank in range(top):
            idx = int(knn_idx[q, rank])
            colour = GREEN if idx in pos else RED
            tiles.append((Path(db_paths[idx]), colour, f"#{rank + 1} db {idx}"))
        for col, (path, colour, label) in enumerate(tiles):
            x = gap + col * (tile_w + gap)
            draw.rectangle([x, y, x + tile_w - 1, y + height + 2 * border - 1], fill=colour)
            grid.paste(_thumbnail(path, cell), (x + border, y + border))  # type: ignore[arg-type]
            draw.text((x + 2, y + height + 2 * border + 1), label, fill=(0, 0, 0))
    buffer = io.BytesIO()
    grid.save(buffer, format="PNG")
    atomic_write_bytes(out_path, buffer.getvalue())
    return Path(out_path)
