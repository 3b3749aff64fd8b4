"""Subprocess target of the DISAM kill test: train, optionally pausing at a checkpoint.

Arguments: ``root run_dir`` then either ``EPOCH:STEP:MARKER`` (after the checkpoint saved at that
epoch and global step, create MARKER and wait to be killed) or ``resume``.
"""

import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _disam_train_setup import context

from vpr_bench_disam.trainer import fit

if __name__ == "__main__":
    torch.set_num_threads(1)
    root, run_dir, mode = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
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

    fit(context(root, run_dir, resume=mode == "resume", emit=emit))
