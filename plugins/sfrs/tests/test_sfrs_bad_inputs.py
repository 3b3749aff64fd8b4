"""SFRS's bad inputs: one line each, the right exit code, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from vpr_bench.cli import main


def _train(tmp_path: Path, *sets: str) -> int:
    args = ["train", "sfrs", "--profile", "quick", "--runs-dir", str(tmp_path / "runs")]
    for item in sets:
        args += ["--set", item]
    return main(args)


@pytest.mark.parametrize(
    ("sets", "expected"),
    [
        (
            ("trainer.generations=3",),
            "loss.temperatures has 2 entries but trainer.generations = 3: give one temperature "
            "per generation",
        ),
        (
            ("trainer.pos_num=6", "trainer.pos_pool=4"),
            "trainer.pos_pool = 4 is smaller than trainer.pos_num = 6",
        ),
        (("loss.hard=arcface",), "loss.hard"),
        (("loss.temperatures=0.07,0",), "loss.temperatures"),
    ],
    ids=["fewer-temperatures-than-generations", "pool-below-num", "bad-hard-loss", "zero-temp"],
)
def test_contradicting_options_exit_2_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sets: tuple[str, ...], expected: str
) -> None:
    assert _train(tmp_path, *sets) == 2
    message = capsys.readouterr().err.strip()
    assert "\n" not in message and expected in message
    assert not (tmp_path / "runs").exists()


def test_run_without_data_fails_on_the_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--plugins sfrs` alone brings netvlad's model; without Tokyo 24/7 the run stops on it."""
    monkeypatch.setenv("VPR_BENCH_DATA", str(tmp_path / "nowhere"))
    code = main(
        [
            "run",
            "--plugins",
            "sfrs",
            "--dataset",
            "tokyo247",
            "--leaderboards",
            str(tmp_path / "lb"),
            "--runs-dir",
            str(tmp_path / "runs"),
        ]
    )
    assert code == 1
    message = capsys.readouterr().err.strip()
    assert "No root folder for dataset tokyo247" in message
    assert not (tmp_path / "runs").exists() and not (tmp_path / "lb").exists()
