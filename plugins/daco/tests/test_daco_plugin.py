"""What the DaCo plugin registers: methods, profiles, paper rows, released weights, `check`."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from vpr_bench import resolve_experiment
from vpr_bench.errors import ConfigError
from vpr_bench.testing import isolated_manager
from vpr_bench_daco.paper import METHODS

PLUGINS = ("vpr_bench_daco.plugin",)


def _registries():  # type: ignore[no-untyped-def]
    return isolated_manager(PLUGINS).registries()


@pytest.mark.parametrize("name", METHODS)
def test_each_method_names_its_parts_and_profiles(name: str) -> None:
    registries = _registries()
    method = registries.methods.get(name)
    assert (method.model, method.loss, method.trainer) == ("daco", name, "daco-views")
    assert set(method.profiles) == {"paper", "paper-val-selected", "quick"}
    registries.check_method(method)
    paper = resolve_experiment(method, registries, profile="paper")
    assert paper.model.backbone == "resnet50" and paper.model.proj_dim == 2048
    assert paper.trainer.iterations == 10000 and paper.trainer.val_every == 0
    assert (paper.trainer.optimizer, paper.trainer.lr, paper.trainer.weight_decay) == (
        "adam",
        1e-3,
        1e-6,
    )
    batch = {"daco": 16, "npid": 64}.get(name, 32)
    assert paper.trainer.items_per_batch == batch
    selected = resolve_experiment(method, registries, profile="paper-val-selected")
    assert selected.trainer.val_every == 1
    quick = resolve_experiment(method, registries, profile="quick")
    assert quick.model.backbone == "tiny" and quick.model.normalizer == "synthcity"


def test_a_batch_below_two_items_is_refused() -> None:
    registries = _registries()
    method = registries.methods.get("daco")
    with pytest.raises(ConfigError, match="items_per_batch"):
        resolve_experiment(method, registries, sets=("trainer.items_per_batch=1",))


def _table(text: str, start: str, end: str) -> dict[tuple[str, str], list[str]]:
    block = text[text.index(start) : text.index(end, text.index(start))]
    rows: dict[tuple[str, str], list[str]] = {}
    data = ""
    for line in block.splitlines():
        cells = [c.strip().strip("*") for c in line.strip().strip("|").split("|")]
        if len(cells) != 5 or not re.match(r"[\d.]+/", cells[2]):
            continue
        data = {"Tokyo": "tokyo", "Foggy": "cityscapes", "Cityscapes": "cityscapes"}.get(
            cells[0].split(" ")[0], "synthia" if cells[0] else data
        )
        rows[(data, cells[1].lower())] = cells[2:]
    return rows


def test_paper_rows_are_the_spec_tables(methods_md: Path) -> None:
    """Every HEAD and ICMR number of methods.md B.6 is a paper row (protocol per column)."""
    text = methods_md.read_text(encoding="utf-8")
    head = _table(text, "HEAD README (APIN 2023", "ICMR-2021 README")
    icmr = _table(text, "ICMR-2021 README", "(For leaderboard")
    assert len(head) == 15 and len(icmr) == 12
    registries = _registries()
    for table, variant in ((head, "APIN"), (icmr, "ICMR 2021")):
        for (data, name), columns in table.items():
            rows = {
                r.dataset: r.metrics
                for r in registries.methods.get(name).paper
                if r.variant.startswith(variant)
            }
            for protocol, column in zip(("ab", "ba", "cross"), columns, strict=True):
                numbers = [float(v) for v in column.split("/")]
                got = rows[f"daco-{data}-{protocol}"]
                assert [got[f"R@{r}"] for r in (1, 2, 4, 8)] == numbers, (data, name, protocol)


def test_released_weights_are_baidu_pages_with_their_codes() -> None:
    method = _registries().methods.get("daco")
    tags = {c.tag: c for c in method.checkpoints}
    assert set(tags) == {"daco-tokyo", "daco-cityscapes", "daco-synthia"}
    tokyo = tags["daco-tokyo"]
    assert tokyo.file.uri == "https://pan.baidu.com/s/139IHtS2_tOZcEK2Qgt-yQw?pwd=5dzs"
    assert tokyo.file.sha256 is None and tokyo.file_name == "tokyo_daco_model.pth"
    assert tokyo.overrides["model.normalizer"] == "tokyo"
    assert tokyo.trained_on == "daco-tokyo-train"
    simclr = {c.tag: c.file.uri for c in _registries().methods.get("simclr").checkpoints}
    assert simclr["simclr-synthia"].endswith("/1l5D86pAkI9duvDH_AQOZVQ?pwd=afeg")


def test_vpr_bench_check_passes() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "vpr_bench", "check", "daco", "--plugins", "daco"],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "passed" in out.stdout and "failed" not in out.stdout


def test_listing_does_not_import_torch() -> None:
    code = "import sys, vpr_bench_daco.plugin; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
