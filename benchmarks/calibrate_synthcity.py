"""Calibrate synthcity's difficulty: the tiny model's R@1 untrained vs after minutes of training.

Run by hand (not a test), e.g. ``.venv/bin/python benchmarks/calibrate_synthcity.py --minutes 3``.
It generates (or reuses) ``synthcity-<size>``, measures R@1 on the test split (25 m, brute-force
kNN in numpy) per condition with the built-in tiny GeM model untrained, trains it with the
built-in triplet loss on simple tuples from the train split (anchor: a train query; positive:
a random database image within 10 m; negatives: random database images beyond 25 m), and
measures again. Threads are limited (default 2) because the machine is shared.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from vpr_bench.builtin.tiny_model import TinyGeMConfig, build_tiny_gem
from vpr_bench.builtin.triplet import TripletLoss
from vpr_bench.data.split import ImageRecord
from vpr_bench.data.synthcity import prepare
from vpr_bench.data.synthcity.spec import load_split

MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


def images(records: tuple[ImageRecord, ...]) -> torch.Tensor:
    arrays = [(np.asarray(Image.open(r.path), np.float32) / 255.0 - MEAN) / STD for r in records]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


def utm(records: tuple[ImageRecord, ...]) -> np.ndarray:
    return np.array([(r.easting, r.northing) for r in records], np.float64)


@torch.no_grad()
def describe(model: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    model.eval()
    return torch.cat([model(x[i : i + 256]) for i in range(0, len(x), 256)]).numpy()


def recall_at_1(
    model: torch.nn.Module, db: torch.Tensor, q: torch.Tensor, hit: np.ndarray, conds: list[str]
) -> dict[str, float]:
    d_db, d_q = describe(model, db), describe(model, q)
    top1 = np.argmax(d_q @ d_db.T, axis=1)  # L2-normalised: max inner product = nearest
    ok = hit[np.arange(len(top1)), top1]
    per: dict[str, list[bool]] = defaultdict(list)
    for c, o in zip(conds, ok, strict=True):
        per[c].append(bool(o))
    out = {c: 100.0 * float(np.mean(v)) for c, v in sorted(per.items())}
    out["all"] = 100.0 * float(np.mean(ok))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", type=Path, default=Path("~/.cache/vpr-bench/synthcity"))
    parser.add_argument("--size", default="small")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    t0 = time.time()
    folder = prepare(args.root.expanduser(), args.size, args.seed)
    print(f"dataset {folder} ready in {time.time() - t0:.1f} s")
    test, train = load_split(folder, "test"), load_split(folder, "train")
    db, q = images(test.database), images(test.queries)
    dist = np.linalg.norm(utm(test.queries)[:, None] - utm(test.database)[None], axis=2)
    hit = dist <= 25.0
    conds = [r.condition or "?" for r in test.queries]
    model = build_tiny_gem(TinyGeMConfig())
    before = recall_at_1(model, db, q, hit, conds)
    print("untrained R@1:", {k: round(v, 1) for k, v in before.items()})

    tr_db, tr_q = images(train.database), images(train.queries)
    d_tr = np.linalg.norm(utm(train.queries)[:, None] - utm(train.database)[None], axis=2)
    positives = [np.flatnonzero(row <= 10.0) for row in d_tr]
    negatives = [np.flatnonzero(row > 25.0) for row in d_tr]
    usable = [i for i, p in enumerate(positives) if len(p)]
    rng = np.random.default_rng(0)
    loss_fn = TripletLoss()
    optim = torch.optim.Adam(model.parameters(), lr=1e-3)
    steps, start = 0, time.time()
    while time.time() - start < args.minutes * 60.0:
        model.train()
        batch = rng.choice(usable, 16, replace=False)
        pos = [int(rng.choice(positives[i])) for i in batch]
        neg = np.stack([rng.choice(negatives[i], 8, replace=False) for i in batch])
        x = torch.cat([tr_q[batch], tr_db[pos], tr_db[neg.ravel()]])
        out = model(x)
        a, p, n = out[:16], out[16:32], out[32:].reshape(16, 8, -1)
        loss = loss_fn(a, p[:, None], n)
        optim.zero_grad()
        loss.backward()
        optim.step()
        steps += 1
        if steps % 100 == 0:
            print(f"step {steps} loss {loss.item():.4f} ({time.time() - start:.0f} s)")
    after = recall_at_1(model, db, q, hit, conds)
    print(f"trained {steps} steps in {time.time() - start:.0f} s")
    print("trained R@1:  ", {k: round(v, 1) for k, v in after.items()})


if __name__ == "__main__":
    main()
