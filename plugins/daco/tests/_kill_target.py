"""Subprocess target of the SIGKILL test: train a DaCo method on a synthcity folder.

Arguments: ``city runs_dir method`` then either ``EPOCH:STEP:MARKER`` (after the checkpoint
saved at that epoch and step, create MARKER and wait to be killed) or ``resume:RUN_DIR``.
"""

import sys
import time
from pathlib import Path
from typing import Any

import torch

from vpr_bench import resolve_experiment
from vpr_bench.testing import isolated_manager
from vpr_bench.train import load_training_data, resume_training, train_method

PLUGINS = ("vpr_bench_daco.plugin",)
SETS = (
    "device=cpu",
    "trainer.epochs=2",
    "trainer.crop=32",
    "trainer.items_per_batch=8",
    "trainer.checkpoint_every_steps=1",
    "model.tiny_width=8",
    "model.hidden_dim=32",
    "model.proj_dim=32",
)


def train(city: Path, runs: Path, method_name: str, emit: Any = None) -> Any:
    """Train ``method_name`` (quick profile, small) on ``city``."""
    registries = isolated_manager(PLUGINS).registries()
    method = registries.methods.get(method_name)
    sets = SETS + (("loss.dim=32", "loss.negs=24") if method_name in ("moco", "npid") else ())
    config = resolve_experiment(method, registries, profile="quick", sets=sets)
    data = load_training_data(method, registries, config, dataset_name="synthcity", data_root=city)
    return train_method(method, registries, config, data, runs_dir=runs, emit=emit)


if __name__ == "__main__":
    torch.set_num_threads(1)
    city, runs, method_name, mode = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4]
    if mode.startswith("resume:"):
        registries = isolated_manager(PLUGINS).registries()
        resume_training(registries.methods.get(method_name), registries, Path(mode[7:]))
    else:
        epoch, step, marker = mode.split(":", 2)

        def emit(event: Any) -> None:
            payload = event.payload
            if event.kind == "checkpoint-saved" and (payload.get("epoch"), payload["step"]) == (
                int(epoch),
                int(step),
            ):
                Path(marker).touch()
                while True:
                    time.sleep(1)

        train(city, runs, method_name, emit)
