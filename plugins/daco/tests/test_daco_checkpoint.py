"""DaCo's released ``<data>_<method>_model.pth`` files, synthesised from manifest_daco.json.

Both head widths load (HEAD 2048, ICMR 2021 128) and the model records which; keys are
strict; a state dict that is not DaCo's is refused in one line.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from vpr_bench.errors import DataError
from vpr_bench.testing import isolated_manager
from vpr_bench.weights import load_weights_file
from vpr_bench_daco.config import DaCoConfig
from vpr_bench_daco.model import build_daco
from vpr_bench_daco.weights import load_daco_weights


def _released(oracles_dir: Path, path: Path, proj_dim: int) -> dict[str, torch.Tensor]:
    """A file in the released layout: the manifest's entries, seeded values; head ``proj_dim``."""
    manifest = json.loads((oracles_dir / "manifest_daco.json").read_text())
    generator = torch.Generator().manual_seed(proj_dim)
    state: dict[str, torch.Tensor] = {}
    for entry in manifest["entries"]:
        shape = list(entry["shape"])
        if entry["name"] in ("g.3.weight", "g.3.bias"):
            shape[0] = proj_dim
        if entry["dtype"] == "int64":
            state[entry["name"]] = torch.tensor(7, dtype=torch.int64)
        elif entry["name"].endswith("running_var"):
            state[entry["name"]] = torch.rand(shape, generator=generator) + 0.5
        else:
            state[entry["name"]] = torch.randn(shape, generator=generator) * 0.01
    torch.save(state, path)
    return state


@pytest.fixture(scope="module")
def method() -> object:
    return isolated_manager(("vpr_bench_daco.plugin",)).registries().methods.get("daco")


@pytest.mark.parametrize(("proj_dim", "head"), [(2048, "HEAD"), (128, "ICMR 2021")])
def test_either_head_width_loads_and_is_recorded(
    oracles_dir: Path, tmp_path: Path, method: object, proj_dim: int, head: str
) -> None:
    path = tmp_path / "tokyo_daco_model.pth"
    state = _released(oracles_dir, path, proj_dim)
    model = build_daco(DaCoConfig(normalizer="tokyo"))  # built with the default 2048 head
    loaded = load_weights_file(model, path, method=method)  # type: ignore[arg-type]
    expected_loader = "state-dict" if proj_dim == 2048 else "vpr_bench_daco.weights:"
    assert loaded.loader.startswith(expected_loader) and loaded.pca is None
    assert model.head == head and model.proj_dim == proj_dim
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key
    direct = build_daco(DaCoConfig(normalizer="tokyo"))
    load_daco_weights(path, direct)
    assert direct.head == head
    with torch.no_grad():
        images = torch.rand(1, 3, 64, 64)
        torch.testing.assert_close(direct.eval()(images), model.eval()(images))


def test_keys_are_strict(oracles_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "tokyo_daco_model.pth"
    state = _released(oracles_dir, path, 2048)
    del state["f.7.2.bn3.running_var"]
    torch.save(state, path)
    with pytest.raises(DataError, match=r"f\.7\.2\.bn3\.running_var") as caught:
        load_daco_weights(path, build_daco(DaCoConfig()))
    assert "\n" not in str(caught.value)
    small = build_daco(DaCoConfig(backbone="resnet18"))
    full = tmp_path / "full.pth"
    _released(oracles_dir, full, 2048)
    with pytest.raises(DataError, match="model.backbone=resnet50"):
        load_daco_weights(full, small)


@pytest.mark.parametrize(
    "payload",
    [
        {"state_dict": {"f.0.weight": torch.zeros(1)}},
        {"module.f.0.weight": torch.zeros(1), "g.0.weight": torch.zeros(1, 1)},
        {"f.0.weight": torch.zeros(64, 3, 7, 7)},
    ],
    ids=["wrapped", "prefixed", "no-head"],
)
def test_a_non_daco_state_dict_is_refused(tmp_path: Path, payload: dict[str, object]) -> None:
    path = tmp_path / "other.pth"
    torch.save(payload, path)
    with pytest.raises(DataError, match="is not a DaCo state dict") as caught:
        load_daco_weights(path, build_daco(DaCoConfig(backbone="tiny")))
    assert "\n" not in str(caught.value)
