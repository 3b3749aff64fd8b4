"""Subprocess target of the SIGKILL test: train the quick ``deattention`` method on a city.

Arguments: ``city runs_dir STEP:MARKER`` (after the checkpoint saved at STEP, create MARKER
and wait to be killed) or ``city run_dir resume``.
"""

import os
import sys
import time
from pathlib import Path

import torch

from vpr_bench import resolve_experiment
from vpr_bench.testing import isolated_manager
from vpr_bench.train import load_training_data, resume_training, train_method

PLUGINS = ("vpr_bench_netvlad.plugin", "vpr_bench_deattention.plugin")
SETS = (
    "model.init_images=16",
    "trainer.height=64",
    "trainer.width=85",
    "trainer.epochs=2",
    "trainer.cache_queries=30",
    "trainer.checkpoint_every_steps=4",
    "trainer.val_every=0",
    "device=cpu",
)


def train(city: Path, runs: Path, emit: object = None) -> object:
    """The quick deattention run of the tests (2 short epochs on the tiny city)."""
    registries = isolated_manager(PLUGINS).registries()
    method = registries.methods.get("deattention")
    config = resolve_experiment(method, registries, profile="quick", sets=SETS)
    data = load_training_data(method, registries, config, dataset_name="synthcity", data_root=city)
    return train_method(method, registries, config, data, runs_dir=runs, emit=emit)  # type: ignore[arg-type]


if __name__ == "__main__":
    # The thread count of the test process that trains the reference run: CPU kernels may sum
    # in another order with another count, and the weights must be bit-identical.
    torch.set_num_threads(int(os.environ.get("VPR_BENCH_TEST_THREADS", "1")))
    city, folder, mode = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    if mode == "resume":
        registries = isolated_manager(PLUGINS).registries()
        resume_training(registries.methods.get("deattention"), registries, folder)
        sys.exit(0)
    step, marker = mode.split(":", 1)

    def pause(event) -> None:  # type: ignore[no-untyped-def]
        payload = event.payload
        if (
            event.kind == "checkpoint-saved"
            and payload.get("step") == int(step)
            and (
                "epoch" in payload  # a resumable checkpoint, not the weights-only ones
            )
        ):
            Path(marker).touch()
            while True:
                time.sleep(1)

    train(city, folder, emit=pause)
