"""Baidu Netdisk and MEGA share links are web pages: never downloaded, the error says so."""

from __future__ import annotations

import re
from pathlib import Path
from unittest import mock

import pytest

from vpr_bench.errors import DataError
from vpr_bench.specs import Checkpoint, MethodSpec, RemoteFile
from vpr_bench.weights.released import is_direct_link, locate_checkpoint

BAIDU = "https://pan.baidu.com/s/139IHtS2_tOZcEK2Qgt-yQw?pwd=5dzs"
MEGA = "https://mega.nz/folder/abcDEF#key"


@pytest.mark.parametrize("uri", [BAIDU, MEGA, "https://mega.co.nz/#!abc"])
def test_share_pages_are_not_direct_links(uri: str) -> None:
    assert not is_direct_link(uri)


def test_download_refuses_a_baidu_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--download`` used to store Baidu's HTML as the checkpoint; now nothing is fetched."""
    monkeypatch.setenv("VPR_BENCH_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    ckpt = Checkpoint(
        "daco-tokyo", RemoteFile(BAIDU), "daco-tokyo-train", filename="tokyo_daco_model.pth"
    )
    method = MethodSpec("daco", "tiny-gem", "triplet", "triplet-mining", "x", checkpoints=(ckpt,))
    target = tmp_path / "weights" / "daco" / "daco-tokyo" / "tokyo_daco_model.pth"
    with (
        mock.patch("urllib.request.urlopen") as urlopen,
        pytest.raises(DataError, match=re.escape(f"{BAIDU} is a web page, not a file")) as caught,
    ):
        locate_checkpoint(method, ckpt, allow_download=True, progress=False)
    urlopen.assert_not_called()
    assert f"put it at {target}" in str(caught.value)
    assert not target.exists()
