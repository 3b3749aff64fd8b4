"""Released weights: which method owns a tag, where the file is found, sha256, downloads."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pytest

from vpr_bench.errors import DataError, UnknownNameError, UsageError
from vpr_bench.specs import Checkpoint, MethodSpec, RemoteFile
from vpr_bench.weights.released import (
    candidate_paths,
    download,
    find_checkpoint,
    is_direct_link,
    locate_checkpoint,
    verify_checkpoint,
    weights_dir,
)

DRIVE = "https://drive.google.com/drive/folders/1ZNGdXVRwUJvGH0ZJdwy18A8e9H0wnFHc?usp=sharing"


def _release(tmp_path: Path, payload: bytes = b"weights") -> tuple[Path, str]:
    source = tmp_path / "published" / "w.pth"
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_bytes(payload)
    return source, hashlib.sha256(payload).hexdigest()


def _method(*checkpoints: Checkpoint, name: str = "m") -> MethodSpec:
    return MethodSpec(name, "tiny-gem", "triplet", "triplet-mining", "x", checkpoints=checkpoints)


@pytest.fixture(autouse=True)
def _isolated_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VPR_BENCH_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))


def test_find_checkpoint_by_tag_with_suggestions() -> None:
    zoo = Checkpoint("openibl-sare-ind", RemoteFile(DRIVE), "pitts30k-train", filename="m.tar")
    sare, other = _method(zoo, name="sare"), _method(name="netvlad")
    assert find_checkpoint([other, sare], "openibl-sare-ind") == (sare, zoo)
    with pytest.raises(UnknownNameError, match="Did you mean: openibl-sare-ind?"):
        find_checkpoint([other, sare], "openibl-sare")
    with pytest.raises(UnknownNameError, match="These methods release no weights"):
        find_checkpoint([other], "openibl-sare-ind")
    with pytest.raises(UsageError, match=r"released by several methods \(sare, twin\)"):
        find_checkpoint([sare, _method(zoo, name="twin")], "openibl-sare-ind")


def test_places_are_weights_folder_then_torch_hub(tmp_path: Path) -> None:
    ckpt = Checkpoint("zoo", RemoteFile("https://x.org/a/w.pth"), "x")
    assert weights_dir() == tmp_path / "weights"
    assert candidate_paths(_method(ckpt), ckpt) == [
        tmp_path / "weights" / "m" / "zoo" / "w.pth",
        tmp_path / "torch" / "hub" / "checkpoints" / "w.pth",
    ]
    hub_copy = tmp_path / "torch" / "hub" / "checkpoints" / "w.pth"
    hub_copy.parent.mkdir(parents=True)
    hub_copy.write_bytes(b"x")
    assert locate_checkpoint(_method(ckpt), ckpt) == hub_copy
    ours = tmp_path / "weights" / "m" / "zoo" / "w.pth"
    ours.parent.mkdir(parents=True)
    ours.write_bytes(b"x")
    assert locate_checkpoint(_method(ckpt), ckpt) == ours
    given = tmp_path / "mine.pth"
    given.write_bytes(b"x")
    assert locate_checkpoint(_method(ckpt), ckpt, given) == given
    with pytest.raises(DataError, match=r"--weights .*nope.pth does not exist; give the .*w.pth"):
        locate_checkpoint(_method(ckpt), ckpt, tmp_path / "nope.pth")


def test_missing_file_says_where_to_get_it_and_put_it(tmp_path: Path) -> None:
    page = Checkpoint("zoo", RemoteFile(DRIVE), "x", filename="model_best.pth.tar")
    target = tmp_path / "weights" / "m" / "zoo" / "model_best.pth.tar"
    with pytest.raises(DataError) as caught:
        locate_checkpoint(_method(page), page, allow_download=True)
    message = str(caught.value)
    assert f"{DRIVE} is a web page, not a file: download model_best.pth.tar from it" in message
    assert f"put it at {target} (or pass --weights FILE)" in message
    direct = Checkpoint("zoo", RemoteFile("https://x.org/w.pth"), "x")
    with pytest.raises(DataError, match="run again with --download to fetch it from https://x.org"):
        locate_checkpoint(_method(direct), direct)


def test_direct_links() -> None:
    assert is_direct_link("https://github.com/yxgeee/OpenIBL/releases/download/v0.1.0-beta/x.pth")
    assert is_direct_link("file:///tmp/w.pth")
    assert not is_direct_link(DRIVE)
    assert not is_direct_link("s3://bucket/w.pth")


def test_download_checks_sha256_and_is_atomic(tmp_path: Path) -> None:
    source, sha = _release(tmp_path)
    ckpt = Checkpoint("zoo", RemoteFile(source.as_uri(), sha256=sha), "x")
    got = locate_checkpoint(_method(ckpt), ckpt, allow_download=True, progress=False)
    assert got == tmp_path / "weights" / "m" / "zoo" / "w.pth"
    assert got.read_bytes() == b"weights" and verify_checkpoint(got, ckpt) == sha
    target = tmp_path / "other" / "w.pth"
    with pytest.raises(DataError, match=f"has sha256 {sha}, expected {'0' * 64}; nothing was kept"):
        download(source.as_uri(), target, "0" * 64, progress=False)
    assert not target.exists() and list(target.parent.iterdir()) == []
    with pytest.raises(DataError, match="Cannot download file:///.*absent.pth"):
        download((tmp_path / "absent.pth").as_uri(), target, None, progress=False)
    assert list(target.parent.iterdir()) == []


def test_verify_names_both_digests_or_warns_without_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source, sha = _release(tmp_path, b"truncated")
    published = Checkpoint("zoo", RemoteFile("https://x.org/w.pth", sha256="a" * 64), "x")
    with pytest.raises(DataError, match=f"has sha256 {sha}, but checkpoint 'zoo' was published"):
        verify_checkpoint(source, published)
    unpublished = Checkpoint("zoo", RemoteFile("https://x.org/w.pth"), "x")
    with caplog.at_level(logging.WARNING, logger="vpr_bench.weights.released"):
        assert verify_checkpoint(source, unpublished) == sha
    assert "no sha256 is published for w.pth" in caplog.text
