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


def test_nan_weights_at_fp32_blame_the_weights_not_the_precision(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A model emitting NaN at fp32 says to check the weights, not 'try fp32'; nothing is kept."""
    import torch

    from vpr_bench import get_registries
    from vpr_bench.registry import resolve

    spec = get_registries().models.get("tiny-gem")
    model = resolve(spec.build)(resolve(spec.config_cls)())
    state = model.state_dict()
    first = next(k for k, v in state.items() if v.is_floating_point())
    state[first] = torch.full_like(state[first], float("nan"))
    weights = tmp_path / "diverged.pt"
    torch.save(state, weights)
    assert _eval(shared_data, tmp_path, weights) == 1
    message = capsys.readouterr().err.strip()
    assert "\n" not in message
    assert "produced NaN/inf descriptors for " in message
    assert "at full precision (fp32), so its weights or its forward are at fault" in message
    assert "check the --weights file" in message
    assert "try fp32" not in message
    assert files_under(tmp_path) == {"diverged.pt"}
