"""Built-in models: the tiny CPU model used by tests and smoke runs (never on leaderboards)."""

from __future__ import annotations

from collections.abc import Iterator

from vpr_bench.hookspecs import hookimpl
from vpr_bench.protocol import ResizePolicy
from vpr_bench.specs import IMAGENET, ModelSpec, Preprocess


@hookimpl
def vpr_bench_models() -> Iterator[ModelSpec]:
    """Register ``tiny-gem``."""
    yield ModelSpec(
        name="tiny-gem",
        build="vpr_bench.builtin.tiny_model:build_tiny_gem",
        config_cls="vpr_bench.builtin.tiny_model:TinyGeMConfig",
        preprocess=Preprocess(
            mean=IMAGENET.mean,
            std=IMAGENET.std,
            scale_255=False,
            train_size=None,
            test_policy=ResizePolicy(),
        ),
        summary="4 conv layers + GeM pooling; for tests and CPU smoke runs (never on leaderboards)",
        leaderboard=False,
    )
