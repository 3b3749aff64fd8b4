from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vpr_bench.eval.distributed import shard_range

WORKER = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    import numpy as np
    import torch
    torch.set_num_threads(1)
    from vpr_bench.builtin.tiny_model import TinyGeMConfig, build_tiny_gem
    from vpr_bench.eval.distributed import rank, shutdown, world_size
    from vpr_bench.eval.extract import extract_with_stats
    from vpr_bench.protocol import ResizePolicy
    from vpr_bench.specs import IMAGENET

    out = Path(sys.argv[1])
    paths = json.loads((out / "paths.json").read_text())
    model = build_tiny_gem(TinyGeMConfig(width=4, dim=16))
    got = extract_with_stats(model, paths, ResizePolicy(), IMAGENET, batch_size=2)
    np.save(out / f"rank{rank()}_of{world_size()}.npy", got.descriptors)
    from vpr_bench import get_registries
    from vpr_bench.pipeline.eval_request import EvalRequest, run_request
    request = EvalRequest(
        name="tiny-gem", dataset="csv-folder", data_root=out / "csv", out_dir=out / "dist",
        device="cpu", batch_size=3, use_cache=False,
    )
    outcome = run_request(get_registries(), request)
    assert (outcome is None) == (rank() != 0)
    shutdown()
    """
)


def test_shard_range_covers_without_overlap() -> None:
    for n in (0, 1, 5, 7, 10):
        for world in (1, 2, 3, 4):
            spans = [shard_range(n, r, world) for r in range(world)]
            assert spans[0][0] == 0 and spans[-1][1] == n
            assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))
            sizes = [b - a for a, b in spans]
            assert max(sizes) - min(sizes) <= 1
    assert shard_range(7, 0, 2) == (0, 4) and shard_range(7, 1, 2) == (4, 7)
    with pytest.raises(ValueError, match="not in a world"):
        shard_range(5, 2, 2)


def _csv_dataset(folder: Path, rng: np.random.Generator) -> None:
    """A csv-folder dataset of 5 database and 3 query images along a 100 m street."""
    lines = {
        "database": ["path,easting,northing,condition"],
        "queries": ["path,easting,northing,condition"],
    }
    for kind, count, offset in (("database", 5, 0.0), ("queries", 3, 7.0)):
        for i in range(count):
            name = f"{kind}/{i}.png"
            (folder / kind).mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(folder / name)
            condition = "night" if kind == "queries" and i == 1 else "day"
            lines[kind].append(f"{name},{20.0 * i + offset},0.0,{condition}")
    for kind, rows in lines.items():
        (folder / f"{kind}.csv").write_text("\n".join(rows) + "\n")


def test_two_gloo_ranks_match_one_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vpr_bench import get_registries
    from vpr_bench.builtin.tiny_model import TinyGeMConfig, build_tiny_gem
    from vpr_bench.eval.extract import extract_descriptors
    from vpr_bench.pipeline.eval_request import EvalRequest, run_request
    from vpr_bench.protocol import ResizePolicy
    from vpr_bench.records import read_record
    from vpr_bench.specs import IMAGENET

    rng = np.random.default_rng(0)
    _csv_dataset(tmp_path / "csv", rng)
    paths = []
    for i in range(7):  # odd: the ranks get 4 and 3 images
        path = tmp_path / f"{i}.png"
        size = (24, 18) if i % 3 else (18, 24)
        Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    (tmp_path / "paths.json").write_text(json.dumps(paths))
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    env["OMP_NUM_THREADS"] = "1"
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    launcher += ["--master_port", "0", "--rdzv_backend", "c10d", "--rdzv_endpoint", "localhost:0"]
    done = subprocess.run(
        [*launcher, str(script), str(tmp_path)], env=env, timeout=90, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    model = build_tiny_gem(TinyGeMConfig(width=4, dim=16))
    single = extract_descriptors(model, [Path(p) for p in paths], ResizePolicy(), IMAGENET)
    gathered = np.load(tmp_path / "rank0_of2.npy")
    assert single.shape == (7, 16)
    np.testing.assert_allclose(gathered, single, atol=1e-6)
    assert np.load(tmp_path / "rank1_of2.npy").shape == (0, 16)
    request = EvalRequest(
        name="tiny-gem",
        dataset="csv-folder",
        data_root=tmp_path / "csv",
        out_dir=tmp_path / "single",
        device="cpu",
        use_cache=False,
    )
    outcome = run_request(get_registries(), request)
    assert outcome is not None
    relative = outcome.record_path.relative_to(tmp_path / "single")
    dist_record = read_record(tmp_path / "dist" / relative)
    assert dist_record.metrics == outcome.record.metrics
    assert dist_record.per_condition == outcome.record.per_condition
    assert dist_record.counts == outcome.record.counts
    assert dist_record.config["evaluation"]["world_size"] == 2
