"""`vpr-bench run --checkpoint TAG`: released weights found, verified, loaded and recorded."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
import torch

from tests.plugin_factory import write_distribution
from vpr_bench.builtin.tiny_model import TinyGeMConfig, build_tiny_gem
from vpr_bench.cli import main
from vpr_bench.data.synthcity import prepare
from vpr_bench.pipeline.released import pca_file_for
from vpr_bench.records import read_record

PLUGIN = """
from vpr_bench import MethodSpec, hookimpl
from vpr_bench.specs import Checkpoint, PaperResult, RemoteFile


@hookimpl
def vpr_bench_methods():
    yield MethodSpec(
        name="zoo-method", model="tiny-gem", loss="triplet", trainer="triplet-mining",
        train_dataset="synthcity-train", summary="a method with released weights",
        checkpoints=(
            Checkpoint(
                tag="zoo-release",
                file=RemoteFile({uri!r}, sha256={sha!r}),
                trained_on="synthcity-train",
                overrides={{"pca_dim": 8}},
                reported=(PaperResult("synthcity-test", {{"R@1": 12.5}}, source="the authors"),),
            ),
        ),
    )
"""


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepare(tmp_path_factory.mktemp("data"), "tiny", seed=0, progress=False)


@pytest.fixture
def release(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str]:
    """Tiny-gem weights 'published' at a file:// address, and a plugin that releases them."""
    published = tmp_path / "published" / "tiny_zoo.pth"
    published.parent.mkdir()
    torch.save(build_tiny_gem(TinyGeMConfig(seed=7)).state_dict(), published)
    sha = hashlib.sha256(published.read_bytes()).hexdigest()
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    write_distribution(
        site,
        "vpr-bench-zoo",
        "zoo",
        "vpr_bench_zoo_release",
        "unused",
        body=PLUGIN.format(uri=published.as_uri(), sha=sha),
    )
    monkeypatch.setenv("VPR_BENCH_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return published, sha


def _run(city: Path, tmp_path: Path, *extra: str) -> int:
    return main(
        [
            "run",
            "--plugins",
            "zoo",
            "--dataset",
            "synthcity",
            "--data-root",
            str(city),
            "--train-root",
            str(city),
            "--leaderboards",
            str(tmp_path / "lb"),
            "--runs-dir",
            str(tmp_path / "runs"),
            "--no-cache",
            *extra,
        ]
    )


def test_checkpoint_is_downloaded_verified_evaluated_and_compared(
    city: Path,
    tmp_path: Path,
    release: tuple[Path, str],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    published, sha = release
    target = tmp_path / "weights" / "zoo-method" / "zoo-release" / "tiny_zoo.pth"
    assert _run(city, tmp_path, "--checkpoint", "zoo-release") == 1
    err = capsys.readouterr().err
    assert "needs tiny_zoo.pth, which is not here" in err
    assert f"run again with --download to fetch it from {published.as_uri()}" in err
    assert f"put it at {target}" in err

    assert _run(city, tmp_path, "--checkpoint", "zoo-release", "--download") == 0
    out = capsys.readouterr().out
    assert target.read_bytes() == published.read_bytes()
    assert pca_file_for(target).is_file()  # fitted on synthcity-train, kept for the next run
    records = sorted((tmp_path / "lb" / "records").rglob("*.json"))
    assert [r.relative_to(tmp_path / "lb" / "records").parent.as_posix() for r in records] == [
        "synthcity/zoo-method.zoo-release"  # no untrained baseline
    ]
    assert records[0].name.startswith("synthcity.test.synthcity-tiny-")
    record = read_record(records[0])
    assert (record.checkpoint_tag, record.weights_sha256) == ("zoo-release", sha)
    assert record.trained_on == "synthcity-train" and record.descriptor_dim == 8
    assert record.config["pca_dim"] == 8
    assert "Evaluating checkpoint zoo-release on synthcity" in out
    # (tiny-gem is a test-only model, so the page hides the row; test_build covers the
    # checkpoint's reported numbers and the Δ R@1 against them.)

    # The same weights given as a plain file give the same numbers; the PCA file is reused.
    with caplog.at_level("INFO", logger="vpr_bench.pipeline.released"):
        assert _run(city, tmp_path, "--checkpoint", "zoo-release", "--weights", str(target)) == 0
    assert "PCA-whitening from" in caplog.text
    assert read_record(records[0]).metrics == record.metrics
    # --set still wins over what the checkpoint sets (here: keep 4 of the 8 PCA components).
    assert _run(city, tmp_path, "--checkpoint", "zoo-release", "--set", "pca_dim=4") == 0
    assert read_record(records[0]).descriptor_dim == 4
    assert _run(city, tmp_path, "--checkpoint", "zoo-release", "--set", "pca_dim=none") == 0
    assert read_record(records[0]).descriptor_dim == 64  # tiny-gem's raw descriptor


def test_bad_checkpoint_use_is_refused(
    city: Path, tmp_path: Path, release: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    published, _ = release
    assert _run(city, tmp_path, "--checkpoint", "zoo-relase") == 2
    assert "Did you mean: zoo-release?" in capsys.readouterr().err
    assert _run(city, tmp_path, "--checkpoint", "zoo-release", "--methods", "tiny-triplet") == 2
    assert (
        "Checkpoint 'zoo-release' is released by method 'zoo-method', which is not among this "
        "run's methods (tiny-triplet); run it with --methods zoo-method." in capsys.readouterr().err
    )
    assert _run(city, tmp_path, "--download") == 2
    assert "use it with --checkpoint TAG" in capsys.readouterr().err
    args = ("--checkpoint", "zoo-release", "--trained-on", "pitts30k-train")
    assert _run(city, tmp_path, *args) == 2
    assert "a --checkpoint says what it was trained on" in capsys.readouterr().err
    damaged = tmp_path / "damaged.pth"
    shutil.copy(published, damaged)
    with damaged.open("ab") as handle:
        handle.write(b"!")
    assert _run(city, tmp_path, "--checkpoint", "zoo-release", "--weights", str(damaged)) == 1
    assert "but checkpoint 'zoo-release' was published with" in capsys.readouterr().err
