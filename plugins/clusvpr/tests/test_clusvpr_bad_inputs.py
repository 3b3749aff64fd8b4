"""ClusVPR's bad inputs: one line each, refused before any work (or by the forward, in one line).

The training-size checks run when the experiment's config is resolved (the model config's
``check``), which every command does before it reads data or writes a file.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import pytest
import torch

from vpr_bench import resolve_experiment
from vpr_bench.errors import ConfigError
from vpr_bench.testing import isolated_manager
from vpr_bench_clusvpr.config import ClusVPRConfig
from vpr_bench_clusvpr.model import build_clusvpr

PLUGINS = ("vpr_bench_netvlad.plugin", "vpr_bench_sfrs.plugin", "vpr_bench_clusvpr.plugin")


def _resolve(profile: str, *sets: str) -> None:
    registries = isolated_manager(PLUGINS).registries()
    resolve_experiment(registries.methods.get("clusvpr"), registries, profile=profile, sets=sets)


CASES = [
    (
        ("quick", "trainer.height=120", "trainer.width=160"),
        "ClusVPR cannot train on 120x160 images: their tiny feature map 15x20 is odd (the CWT "
        "blocks pool it 2x2 and upsample it back); use e.g. 128x160 images (trainer.height, "
        "trainer.width).",
    ),
    (
        ("quick", "trainer.height=16", "trainer.width=24"),
        "ClusVPR cannot train on 16x24 images: their tiny feature map 2x3 is smaller than the 3x4 "
        "grid of s-patches; use e.g. 32x32 images (trainer.height, trainer.width).",
    ),
    (
        ("paper", "trainer.height=500"),
        "ClusVPR cannot train on 500x640 images: their vgg16 feature map 31x40 is odd",
    ),
    (
        ("paper", "trainer.height=32", "trainer.width=48"),
        "their vgg16 feature map 2x3 is smaller than the 3x4 grid of s-patches; use e.g. 64x64",
    ),
    (("quick", "model.map_height=11"), "model.map_height x model.map_width = 11x16 must both be"),
    (("quick", "model.groups=5"), "model.expansion * D = 2 * 64 is not divisible by model.groups"),
    (("quick", "model.cwt_heads=3"), "is not divisible by model.cwt_heads = 3"),
    (("paper", "model.backbone=resnet50"), "model.backbone = 'resnet50' is not valid"),
    (("quick", "loss.temperatures=0.06"), "loss.temperatures has 1 entries but"),
]


@pytest.mark.parametrize(
    ("sets", "expected"),
    CASES,
    ids=[
        "odd-training-map",
        "map-below-grid",
        "odd-vgg-map",
        "vgg-map-below-grid",
        "odd-reference-map",
        "groups",
        "heads",
        "backbone",
        "temperatures",
    ],
)
def test_refused_when_the_config_is_resolved(sets: tuple[str, ...], expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        _resolve(*sets)
    message = str(info.value)
    assert "\n" not in message and expected in message


def test_the_suggested_sizes_are_accepted() -> None:
    _resolve("quick", "trainer.height=128", "trainer.width=160")
    _resolve("quick", "trainer.height=32", "trainer.width=32")
    _resolve("paper", "trainer.height=64", "trainer.width=64")


def test_the_forward_refuses_what_it_cannot_do_in_one_line() -> None:
    model = build_clusvpr(
        ClusVPRConfig(
            backbone="tiny",
            pretrained=None,
            num_clusters=4,
            groups=4,
            map_height=4,
            map_width=4,
            cwt_mlp_dim=8,
        )
    )
    model.eval()
    with torch.no_grad():
        model(torch.randn(1, 3, 16, 24))  # a 2x3 map evaluates (resize path) ...
        with pytest.raises(ConfigError) as info:  # ... but has no 3x4 grid of regions
            model(torch.randn(1, 3, 16, 24), regions=True)
    assert str(info.value) == (
        "ClusVPR cannot cut the 2x3 feature map of 16x24 images into its 3x4 grid of s-patches; "
        "use images of at least 24x32."
    )
    model.train()
    with pytest.raises(ConfigError) as info:
        model(torch.randn(2, 3, 40, 64), regions=True)  # 5x8: fits the grid, but odd
    assert "\n" not in str(info.value)
    assert "feature map 5x8 is odd" in str(info.value) and "use e.g. 48x64 images" in str(
        info.value
    )


def _installed() -> bool:
    try:
        metadata.distribution("vpr-bench-clusvpr")
    except metadata.PackageNotFoundError:
        return False
    return True


@pytest.mark.skipif(not _installed(), reason="needs vpr-bench-clusvpr installed (make install)")
def test_the_cli_exits_2_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from vpr_bench.cli import main

    args = ["train", "clusvpr", "--profile", "quick", "--runs-dir", str(tmp_path / "runs")]
    assert main([*args, "--set", "trainer.height=120", "--set", "trainer.width=160"]) == 2
    message = capsys.readouterr().err.strip()
    assert "\n" not in message and "feature map 15x20 is odd" in message
    assert not (tmp_path / "runs").exists()
