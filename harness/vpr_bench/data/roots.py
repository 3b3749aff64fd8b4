"""Where a dataset lives on disk: ``--data-root``, ``$VPR_BENCH_DATA/<dataset>`` or the default.

The first of these that is given wins:

1. an explicit root (``--data-root PATH`` / ``--root PATH``), which must exist;
2. ``$VPR_BENCH_DATA/<dataset name>`` when ``VPR_BENCH_DATA`` names a folder holding one
   sub-folder per dataset (``$VPR_BENCH_DATA/pitts30k``, ``$VPR_BENCH_DATA/tokyo247``, ...);
3. the dataset's ``default_root`` (``~`` expanded).

When none of them exists the error names all three options and the paths that were tried.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING

from vpr_bench.errors import DataError

if TYPE_CHECKING:
    from vpr_bench.specs import DatasetSpec

__all__ = ["ENV_VAR", "candidate_roots", "generation_allowed", "read_only", "resolve_root"]

_READ_ONLY: ContextVar[bool] = ContextVar("vpr_bench_data_read_only", default=False)


@contextlib.contextmanager
def read_only() -> Iterator[None]:
    """Within this block dataset loaders read only: a generated dataset is never generated.

    ``vpr-bench data check`` loads splits inside it, so checking a folder never writes to it.
    """
    token = _READ_ONLY.set(True)
    try:
        yield
    finally:
        _READ_ONLY.reset(token)


def generation_allowed() -> bool:
    """Whether a loader may generate a missing generated dataset (False inside read_only)."""
    return not _READ_ONLY.get()


ENV_VAR = "VPR_BENCH_DATA"


def candidate_roots(
    spec: DatasetSpec, env: Mapping[str, str] | None = None
) -> list[tuple[str, Path]]:
    """The implicit roots of ``spec`` in lookup order, each with where it came from."""
    env = os.environ if env is None else env
    found: list[tuple[str, Path]] = []
    base = env.get(ENV_VAR, "").strip()
    if base:
        found.append((f"${ENV_VAR}/{spec.name}", Path(base).expanduser() / spec.name))
    if spec.default_root:
        found.append(("the dataset default", Path(spec.default_root).expanduser()))
    return found


def resolve_root(
    spec: DatasetSpec, root: str | Path | None = None, env: Mapping[str, str] | None = None
) -> Path:
    """The root folder of dataset ``spec``.

    Args:
        spec: The dataset.
        root: An explicit root (from ``--data-root``); used as is when given.
        env: Environment to read ``VPR_BENCH_DATA`` from (``os.environ`` by default).

    Raises:
        DataError: The explicit root does not exist, or no implicit root exists; the message
            names the three ways to give one.
    """
    if root is not None and str(root) != "":
        path = Path(root).expanduser()
        if not path.is_dir():
            raise DataError(
                f"Dataset root {path} for {spec.name} does not exist or is not a folder. "
                "Check the --data-root path."
            )
        return path
    tried = candidate_roots(spec, env)
    for _, path in tried:
        if path.is_dir():
            return path
    if "generated" in spec.provides and tried:
        # A generated dataset (the synthetic city) writes itself on first use.
        path = tried[0][1]
        path.mkdir(parents=True, exist_ok=True)
        return path
    tried_text = "; ".join(f"{label}: {path}" for label, path in tried) or "nothing"
    raise DataError(
        f"No root folder for dataset {spec.name} (tried {tried_text}). Give one with "
        f"--data-root PATH, or set {ENV_VAR} to a folder holding a '{spec.name}' sub-folder, "
        f"or put the data at the dataset's default root "
        f"({spec.default_root or 'none is declared'})."
    )
