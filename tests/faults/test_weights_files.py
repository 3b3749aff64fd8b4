"""Weights files that cannot be used: one line saying what the file is and what to do."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests.faults.conftest import files_under
from vpr_bench.cli import main


def _eval(shared_data: Path, tmp_path: Path, weights: Path) -> int:
    root = shared_data / "vpr_bench" / "datasets" / "corridor"
    return main(
        ["eval", "tiny-gem", "--dataset", "vprbench-folder", "--data-root", str(root),
         "--device", "cpu", "--weights", str(weights), "--out", str(tmp_path / "out"),
         "--cache-dir", str(tmp_path / "cache")]
    )  # fmt: skip


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (random.Random(0).randbytes(4096), "not a torch file (it starts with "),
        (b"", "not a torch file (it is empty: "),
        # a pickle protocol byte, then noise: the unpickler fails inside (IndexError before)
        (b"\x80" + random.Random(8).randbytes(64), "not a readable torch file ("),
        (b"PK\x03\x04" + random.Random(1).randbytes(512), "not a readable torch file ("),
    ],
    ids=["random", "empty", "pickle-noise", "zip-noise"],
)
def test_random_bytes_as_weights_are_not_a_torch_file(
    shared_data: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: bytes,
    expected: str,
) -> None:
    """Random bytes as --weights: exit 1 naming the file, never 'it pickles ...' or a traceback."""
    weights = tmp_path / "w.pt"
    weights.write_bytes(content)
    assert _eval(shared_data, tmp_path, weights) == 1
    message = capsys.readouterr().err.strip()
    assert "\n" not in message
    assert message.startswith(f"error: {weights}: {expected}")
    assert "pickles" not in message
    assert "download the file again" in message
    assert files_under(tmp_path) == {"w.pt"}

