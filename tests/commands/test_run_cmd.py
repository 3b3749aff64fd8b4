"""`vpr-bench run`: train, evaluate, baseline, records and leaderboard in one command."""

from __future__ import annotations

from pathlib import Path

import pytest

from vpr_bench.cli import main
from vpr_bench.data.synthcity import prepare
from vpr_bench.records import read_record


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepare(tmp_path_factory.mktemp("data"), "tiny", seed=0, progress=False)


def test_run_trains_evaluates_and_writes_records(
    city: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "run",
        "--methods",
        "tiny-triplet",
        "--dataset",
        "synthcity",
        "--profile",
        "quick",
        "--data-root",
        str(city),
        "--train-root",
        str(city),
        "--leaderboards",
        str(tmp_path / "lb"),
        "--runs-dir",
        str(tmp_path / "runs"),
        "--set",
        "trainer.epochs=1",
        "--no-cache",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    records = sorted((tmp_path / "lb" / "records" / "synthcity").rglob("*.json"))
    assert [r.parent.name.split(".")[0] for r in records] == ["tiny-gem", "tiny-triplet"]
    trained = read_record(records[1])
    baseline = read_record(records[0])
    assert baseline.checkpoint_tag == "untrained" and baseline.trained_on == ""
    assert trained.trained_on == "synthcity-train" and trained.profile == "quick"
    assert trained.config["trainer"]["epochs"] == 1 and len(trained.weights_sha256) == 64
    assert not trained.leaderboard  # the tiny model never reaches a leaderboard
    assert "tiny-triplet [" in out and "# Leaderboard: synthcity" in out
    assert (tmp_path / "lb" / "synthcity.md").is_file()
    # The time table ends the output: the phases this run went through, then other and total.
    table = out[out.index("Where the time went") :].splitlines()[1:]
    phases = [line.split()[0] for line in table[2:]]
    assert phases == ["train", "extract", "search", "write", "other", "total"]  # no prepare step
    total = float(table[-1].split()[1])
    assert sum(float(line.split()[1]) for line in table[2:-1]) == pytest.approx(total, abs=0.35)


def test_run_checks_everything_before_heavy_work(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            ["run", "--methods", "tiny-triplet", "--dataset", "synthcity", "--set", "trainer.lrr=1"]
        )
        == 2
    )
    assert "Did you mean: lr?" in capsys.readouterr().err
    assert main(["run", "--methods", "tiny-triplett", "--dataset", "synthcity"]) == 2
    assert "Did you mean: tiny-triplet?" in capsys.readouterr().err
    assert main(["run", "--methods", "tiny-triplet", "--dataset", "synthcity-train"]) == 2
    assert "has no evaluation protocol" in capsys.readouterr().err


def test_help_says_how_to_run_on_the_tiny_city(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = capsys.readouterr().out
    assert "vpr-bench data prepare synthcity --size tiny --root /tmp/city" in out
    assert "--data-root /tmp/city/synthcity-tiny --train-root /tmp/city/synthcity-tiny" in out
    assert "vpr-bench list methods --options METHOD" in out


def test_seeds_make_one_record_each_and_a_rerun_replaces_them(city: Path, tmp_path: Path) -> None:
    """--seeds 0,1 trains and evaluates once per seed (a baseline per seed too); the board's
    frame groups each method's seeds into one mean ± std row; running the same command again
    reproduces the same weights, so its records replace the first ones instead of adding."""
    from vpr_bench.leaderboard.collect import records_frame
    from vpr_bench.leaderboard.seeds import group_seeds

    args = [
        "run", "--methods", "tiny-triplet", "--dataset", "synthcity", "--profile", "quick",
        "--data-root", str(city), "--train-root", str(city), "--leaderboards", str(tmp_path / "lb"),
        "--runs-dir", str(tmp_path / "runs"), "--set", "trainer.epochs=1", "--seeds", "0,1",
    ]  # fmt: skip
    assert main(args) == 0
    root = tmp_path / "lb" / "records" / "synthcity"
    first = sorted(root.rglob("*.json"))
    records = [read_record(p) for p in first]
    assert sorted(
        (r.checkpoint_tag.startswith("untrained"), r.provenance.seed) for r in records
    ) == [
        (False, 0),
        (False, 1),
        (True, 0),
        (True, 1),
    ]
    grouped = group_seeds(records_frame(list(zip(first, records, strict=True))))
    assert sorted(grouped["n_seeds"].tolist()) == [2, 2]
    assert main(args) == 0
    assert sorted(root.rglob("*.json")) == first  # replaced, not added
