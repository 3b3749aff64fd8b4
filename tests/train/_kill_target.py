"""Subprocess target of the kill-and-resume test: train the tiny strip model."""

import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.train.synth import tiny_context
from vpr_bench.train.tuples import fit

if __name__ == "__main__":
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))  # as tests/conftest.py
    root, run_dir, epochs = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    fit(tiny_context(root, run_dir, epochs=epochs, resume=len(sys.argv) > 4))
