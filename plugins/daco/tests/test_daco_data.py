"""The DaCo layout reader, its protocols and layout errors; daco-synthcity from synthcity's
pairs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vpr_bench.data import SplitTarget, load_split
from vpr_bench.errors import DataError
from vpr_bench.testing import isolated_manager, prepare_synthcity
from vpr_bench_daco.data import load_daco_pairs, load_daco_split, load_synthcity_pairs
from vpr_bench_daco.trainer import training_items

PLUGINS = ("vpr_bench_daco.plugin",)


def _jpg(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 12, 3), value, dtype=np.uint8)).save(path)


def _layout(root: Path, n_train: int = 3, n_val: int = 2) -> Path:
    for d, prefix in (("domain_a", "day"), ("domain_b", "night")):
        for i in range(n_train):
            _jpg(root / "original" / d / "train" / f"{prefix}_{i + 1:05d}.jpg", i)
            _jpg(root / "generated" / d / "train" / f"{prefix}_{i + 1:05d}.jpg", 100 + i)
        for i in range(n_val):
            _jpg(root / "original" / d / "val" / f"{prefix}_{n_train + i + 1:05d}.jpg", 50 + i)
    return root


def test_train_items_pair_each_original_with_its_translation(tmp_path: Path) -> None:
    root = _layout(tmp_path / "tokyo")
    items = load_daco_pairs(root)
    assert [o.path.relative_to(root).as_posix() for o, _ in items][:4] == [
        "original/domain_a/train/day_00001.jpg",
        "original/domain_a/train/day_00002.jpg",
        "original/domain_a/train/day_00003.jpg",
        "original/domain_b/train/night_00001.jpg",
    ]  # DaCo's sorted order: all of domain_a, then domain_b
    for original, generated in items:
        assert generated.path == root / "generated" / original.path.relative_to(root / "original")
        assert generated.domain is not None and generated.domain.startswith("generated")
    assert len(training_items(items)) == 6  # one item per original
    train = load_daco_split(root, "train", "daco-tokyo")
    assert len(train.database) == 6 and train.queries == ()


def test_val_protocols_through_the_harness(tmp_path: Path) -> None:
    root = _layout(tmp_path / "tokyo", n_val=3)
    spec = isolated_manager(PLUGINS).registries().datasets.get("daco-tokyo")
    splits = {
        s: load_split(SplitTarget(spec, s, root, spec.protocol_for(s)))
        for s in ("ab", "ba", "cross")
    }
    ab, ba, cross = splits["ab"], splits["ba"], splits["cross"]
    assert ab.protocol is not None and ab.protocol.name == "daco-tokyo-ab"
    assert ab.protocol.recall_ns == (1, 2, 4, 8) and ab.protocol.ground_truth == "lists"
    assert ab.protocol.db_resize.kind == "shorter" and ab.protocol.db_resize.shorter == 256
    assert [q.path.name for q in ab.queries] == ["day_00004.jpg", "day_00005.jpg", "day_00006.jpg"]
    assert ab.database[0].path.name == "night_00004.jpg"
    assert ab.positives == ((0,), (1,), (2,)) and ba.queries == ab.database
    assert cross.protocol is not None and cross.protocol.exclude_self
    assert not ab.protocol.exclude_self
    assert cross.queries == cross.database and len(cross.queries) == 6
    assert cross.positives == ((3,), (4,), (5,), (0,), (1,), (2,))


def test_png_data_of_the_icmr_release_reads_too(tmp_path: Path) -> None:
    root = tmp_path / "synthia"
    for d in ("domain_a", "domain_b"):
        for sub in ("original", "generated"):
            path = root / sub / d / "train" / "x.png"
            path.parent.mkdir(parents=True)
            Image.fromarray(np.zeros((4, 4, 3), dtype=np.uint8)).save(path)
    assert len(load_daco_pairs(root)) == 2


@pytest.mark.parametrize(
    ("breakage", "says"),
    [
        ("no-generated", "has no generated/ folder"),
        ("unmatched", r"generated/domain_b/train/night_09999\.jpg has no original"),
        ("missing", r"original/domain_a/train/day_00002\.jpg has no generated translation"),
        ("unequal", "domain_a/val has 2 images but domain_b/val has 1"),
        ("no-original", "is not a DaCo dataset folder: it has no original/"),
    ],
)
def test_layout_errors_are_one_line_and_name_the_file(
    tmp_path: Path, breakage: str, says: str
) -> None:
    root = _layout(tmp_path / "tokyo")
    split = "train"
    if breakage == "no-generated":
        import shutil

        shutil.rmtree(root / "generated")
    elif breakage == "unmatched":
        _jpg(root / "generated" / "domain_b" / "train" / "night_09999.jpg", 1)
    elif breakage == "missing":
        (root / "generated" / "domain_a" / "train" / "day_00002.jpg").unlink()
    elif breakage == "unequal":
        (root / "original" / "domain_b" / "val" / "night_00005.jpg").unlink()
        split = "cross"
    elif breakage == "no-original":
        import shutil

        shutil.rmtree(root / "original")
    with pytest.raises(DataError, match=says) as caught:
        load_daco_split(root, split, "daco-tokyo")
    assert "\n" not in str(caught.value)


def test_daco_synthcity_reads_synthcity_pairs_in_place(tmp_path: Path) -> None:
    city = prepare_synthcity(tmp_path / "data", "tiny", seed=0, progress=False)
    registries = isolated_manager(PLUGINS).registries()
    pairs = registries.datasets.get("synthcity").load_pairs
    from vpr_bench import resolve

    raw = resolve(pairs)(city)
    items = load_synthcity_pairs(city)
    n_train = len(raw) - round(0.2 * len(raw))
    assert len(items) == 2 * n_train
    assert all(i.path.is_relative_to(city) and g.path.is_relative_to(city) for i, g in items)
    assert items[0] == (items[0][0], items[0][1]) and items[0][1].path == raw[0][1].path
    assert items[n_train][0].path == raw[0][1].path and items[n_train][1].path == raw[0][0].path
    assert len(training_items(items)) == len(items)  # already both directions
    spec = registries.datasets.get("daco-synthcity")
    cross = load_split(SplitTarget(spec, "cross", city, spec.protocol_for("cross")))
    n_val = len(raw) - n_train
    assert len(cross.queries) == 2 * n_val
    assert cross.queries[0].path == raw[n_train][0].path
    assert cross.queries[n_val].path == raw[n_train][1].path
