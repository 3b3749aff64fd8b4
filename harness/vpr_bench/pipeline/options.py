"""The options of ``vpr-bench run`` shared by every method (:class:`RunOptions`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from vpr_bench.errors import UsageError

__all__ = ["RunOptions"]


@dataclass(frozen=True)
class RunOptions:
    """Options of ``vpr-bench run`` shared by every method.

    Attributes:
        dataset: ``--dataset`` name of the evaluation set.
        data_root: Root of the evaluation dataset (None: ``VPR_BENCH_DATA`` or its default).
        train_root: Root of the training dataset (None: likewise).
        profile: Config profile of every method (None: defaults).
        config_file: TOML config applied to every method.
        sets: ``--set`` overrides applied to every method.
        weights: Weights file to evaluate instead of training (one method only).
        trained_on: With ``weights``: the dataset they were trained on (recorded; ``""``:
            unknown).
        records_dir: Where records go.
        runs_dir: Where training runs, predictions and grids go.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        seed: Overrides the config's seed when given.
        seeds: Run every method once per seed (``--seeds 0,1,2``); boards then show the mean
            and standard deviation of the runs that differ only by seed. Excludes ``seed``.
        baseline: Also evaluate the untrained model of each distinct model config.
        batch_size: Extraction batch size.
        use_cache: Use the descriptor cache.
        command: The command line recorded in every record.
        checkpoint: Tag of released weights to evaluate (``--checkpoint``): only the method
            that releases it runs, with the checkpoint's config overrides, no training and no
            baseline; ``weights`` may name the downloaded file.
        download: With ``checkpoint``: fetch the file when it is a direct link and not here.
    """

    dataset: str
    data_root: Path | None = None
    train_root: Path | None = None
    profile: str | None = None
    config_file: Path | None = None
    sets: Sequence[str] = ()
    weights: Path | None = None
    trained_on: str = ""
    records_dir: Path = Path("leaderboards/records")
    runs_dir: Path = Path("runs")
    device: str = "auto"
    seed: int | None = None
    seeds: tuple[int, ...] = ()
    baseline: bool = True
    batch_size: int = 32
    use_cache: bool = True
    command: str = ""
    checkpoint: str | None = None
    download: bool = False

    def __post_init__(self) -> None:
        if self.seeds and self.seed is not None:
            raise UsageError("--seed and --seeds exclude each other: give one seed or a list.")
        if len(set(self.seeds)) != len(self.seeds) or any(s < 0 for s in self.seeds):
            raise UsageError(
                f"--seeds must list distinct integers >= 0, got {','.join(map(str, self.seeds))}."
            )
        if self.seeds and (self.weights is not None or self.checkpoint):
            raise UsageError(
                "--seeds repeats training; it has no meaning with --weights or --checkpoint."
            )
        if self.batch_size < 1:
            raise UsageError(
                f"--batch-size must be an integer >= 1, got {self.batch_size}; pass the number "
                "of images per extraction batch (default 32)."
            )
