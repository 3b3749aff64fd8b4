"""Subprocess target of the generations kill test: train, optionally pausing at a checkpoint.

Arguments: ``root run_dir generations epochs`` then either ``EPOCH:STEP:MARKER`` (after the
checkpoint saved at that run epoch and step, create MARKER and wait to be killed) or
``resume``.
"""

import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.train.synth import region_context
from vpr_bench.train.generations import fit

if __name__ == "__main__":
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))  # as tests/conftest.py
    root, run_dir = Path(sys.argv[1]), Path(sys.argv[2])
    generations, epochs, mode = int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    emit = None
    if mode != "resume":
        epoch, step, marker = mode.split(":", 2)

        def emit(event) -> None:  # type: ignore[no-untyped-def]
            payload = event.payload
            if event.kind == "checkpoint-saved" and (payload.get("epoch"), payload["step"]) == (
                int(epoch),
                int(step),
            ):
                Path(marker).touch()
                while True:
                    time.sleep(1)

    context = region_context(
        root, run_dir, generations=generations, epochs=epochs, resume=mode == "resume", emit=emit
    )
    fit(context)
