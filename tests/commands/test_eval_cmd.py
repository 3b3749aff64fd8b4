from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vpr_bench.cli import main
from vpr_bench.eval.predictions import load_predictions
from vpr_bench.records import read_record


@pytest.fixture(scope="module")
def corridor_run(
    shared_data: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path, Path]:
    """One real evaluation of the built-in tiny model on the VPR-Bench corridor images."""
    out = tmp_path_factory.mktemp("eval")
    root = shared_data / "vpr_bench" / "datasets" / "corridor"
    code = main(
        [
            "eval",
            "tiny-gem",
            "--dataset",
            "vprbench-folder",
            "--data-root",
            str(root),
            "--save-grid",
            "4",
            "--out",
            str(out / "out"),
            "--cache-dir",
            str(out / "cache"),
            "--device",
            "cpu",
        ]
    )
    assert code == 0
    return out, root, out / "out" / "vprbench-folder" / "tiny-gem.untrained"


def _stem(folder: Path) -> str:
    """``vprbench-folder.test.<data name>-<digest8>``: the file stem of the folder's result."""
    (record,) = folder.glob("vprbench-folder.test.*.json")
    return record.name.removesuffix(".json")


def test_corridor_end_to_end(
    corridor_run: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, root, folder = corridor_run
    stem = _stem(folder)
    assert stem.startswith("vprbench-folder.test.corridor-")  # the data's folder and digest
    record = read_record(folder / f"{stem}.json")
    assert record.data["name"] == "corridor" and stem.endswith(record.data["digest"][:8])
    assert record.method == "tiny-gem" and record.leaderboard is False
    assert record.checkpoint_tag == "untrained" and record.weights_sha256 == ""
    assert record.counts["n_queries"] == 111 and record.counts["n_database"] == 111
    assert record.protocol["name"] == "vprbench-folder" and record.descriptor_dim == 64
    assert set(record.metrics) >= {"R@1", "R@5", "R@10", "R@20"}
    assert 0 < record.metrics["R@1"] <= record.metrics["R@5"] <= record.metrics["R@20"] <= 100
    predictions = load_predictions(folder / f"{stem}.predictions.npz")
    assert predictions.result.knn_idx.shape == (111, 20)
    assert predictions.db_names[0] == "ref/0000000.jpg"
    assert Path(predictions.meta["root"]) == root.resolve()
    # Ground truth as shipped: query 0's positives are its list in ground_truth_new.npy.
    gt = np.load(root / "ground_truth_new.npy", allow_pickle=True)  # object array (pickled)
    assert predictions.result.positives[0].tolist() == sorted(int(i) for i in gt[0][1])
    grid = Image.open(folder / f"{stem}.grid.png")
    assert grid.size[0] > 6 * 160 and grid.size[1] > 4 * 120

    capsys.readouterr()
    assert main(["eval", "--from-predictions", str(folder / f"{stem}.predictions.npz")]) == 0
    text = capsys.readouterr().out
    assert "matches the metrics stored" in text
    assert f"{record.metrics['R@1']:.2f}" in text


def test_rerun_uses_cache_and_writes_records_elsewhere(
    corridor_run: tuple[Path, Path, Path],
) -> None:
    out, root, folder = corridor_run
    records = out / "records"
    code = main(
        [
            "eval",
            "tiny-gem",
            "--dataset",
            "vprbench-folder-test",
            "--data-root",
            str(root),
            "--out",
            str(out / "out2"),
            "--cache-dir",
            str(out / "cache"),
            "--records",
            str(records),
            "--benchmark",
            "corridor",
            "--device",
            "cpu",
        ]
    )
    assert code == 0
    stem = _stem(folder)
    again = read_record(records / "corridor" / "tiny-gem.untrained" / f"{stem}.json")
    first = read_record(folder / f"{stem}.json")
    assert again.metrics == first.metrics
    assert again.timing.extraction_s == first.timing.extraction_s > 0  # the cache's stored time
    assert (out / "out2" / "corridor" / "tiny-gem.untrained" / f"{stem}.predictions.npz").is_file()


def test_tampered_predictions_are_reported(
    corridor_run: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, folder = corridor_run
    with np.load(folder / f"{_stem(folder)}.predictions.npz") as data:
        arrays = {k: data[k] for k in data.files}
    arrays["knn_idx"] = np.roll(arrays["knn_idx"], 1, axis=0)
    np.savez(tmp_path / "t.npz", **arrays)
    assert main(["eval", "--from-predictions", str(tmp_path / "t.npz")]) == 1
    assert "was edited after it was written (changed 'knn_idx'" in capsys.readouterr().err


def test_usage_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["eval", "tiny-gem"]) == 2
    assert "needs METHOD-OR-MODEL and --dataset" in capsys.readouterr().err
    assert (
        main(["eval", "tiny-gen", "--dataset", "vprbench-folder", "--data-root", str(tmp_path)])
        == 2
    )
    assert "Did you mean: tiny-gem" in capsys.readouterr().err
    assert main(["eval", "tiny-gem", "--dataset", "pitts30k", "--protocol", "tokyo247-vg"]) == 2
    assert "belongs to dataset tokyo247" in capsys.readouterr().err


def test_help_teaches(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    text = capsys.readouterr().out
    for needle in (
        "--from-predictions",
        "--save-grid",
        "--no-cache",
        "torchrun",
        "examples:",
        "VPR_BENCH_CACHE",
        "predictions.npz",
    ):
        assert needle in text


def test_release_tags_are_not_silently_abbreviated_or_misattached(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # argparse would take --checkpoint as a prefix of --checkpoint-tag: a record of an untrained
    # model tagged like a release. Both ways of getting there are refused.
    assert main(["eval", "sare", "--dataset", "tokyo247", "--checkpoint", "openibl-sare-ind"]) == 2
    assert (
        "'vpr-bench run --methods sare --checkpoint openibl-sare-ind --dataset tokyo247'"
        in capsys.readouterr().err
    )
    assert main(["eval", "tiny-gem", "--dataset", "synthcity", "--checkpoint-tag", "zoo"]) == 2
    assert "names the weights given with --weights" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        main(["eval", "tiny-gem", "--dataset", "synthcity", "--weigh", "w.pt"])
    assert stop.value.code == 2
    assert "unrecognized arguments: --weigh" in capsys.readouterr().err
