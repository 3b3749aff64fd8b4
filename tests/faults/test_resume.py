"""`train --resume` of a run it cannot continue: one line naming the run, the run untouched."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from vpr_bench.cli import main


@pytest.fixture(scope="module")
def triplet_run(tiny_city: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished one-epoch tiny-triplet run on the tiny city (treat it as read-only)."""
    runs = tmp_path_factory.mktemp("runs")
    code = main(
        ["train", "tiny-triplet", "--profile", "quick", "--set", "trainer.epochs=1",
         "--set", "trainer.val_every=0", "--set", "trainer.height=32",
         "--data-root", str(tiny_city), "--runs-dir", str(runs), "--device", "cpu"]
    )  # fmt: skip
    assert code == 0
    (run,) = (runs / "tiny-triplet").iterdir()
    return run


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def test_resume_of_another_methods_run_names_its_method(
    triplet_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`train tiny-ms --resume <tiny-triplet run>` says whose run it is and the command to use."""
    before = _snapshot(triplet_run)
    capsys.readouterr()
    assert main(["train", "tiny-ms", "--resume", str(triplet_run)]) == 2
    message = capsys.readouterr().err.strip()
    assert message == (
        f"error: {triplet_run} is a run of tiny-triplet, not tiny-ms: resume it with "
        f"'vpr-bench train tiny-triplet --resume {triplet_run}'."
    )
    assert "unknown config key" not in message
    assert _snapshot(triplet_run) == before


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("{ not json", "(Expecting property name enclosed in double quotes: line 1 column 3"),
        ("[1, 2]", "(it holds no JSON object)"),
        ('{"method": "tiny-triplet"}', "(no valid dataset, experiment)"),
    ],
)
def test_resume_with_a_damaged_config_json_says_so(
    triplet_run: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    text: str,
    why: str,
) -> None:
    """A corrupt config.json of the run: exit 1, one line naming the file and the way out."""
    run = tmp_path / "run"
    shutil.copytree(triplet_run, run)
    (run / "config.json").write_text(text)
    before = _snapshot(run)
    capsys.readouterr()
    assert main(["train", "tiny-triplet", "--resume", str(run)]) == 1
    message = capsys.readouterr().err.strip()
    assert "\n" not in message
    assert message.startswith(f"error: {run / 'config.json'} is damaged {why}")
    assert message.endswith(
        "it is what --resume continues from; restore it (e.g. from a backup), or start a new "
        "run without --resume."
    )
    assert _snapshot(run) == before
