"""``--weights FILE``: the vpr-bench layout first, then the method's foreign-layout loader."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from torch import nn

from vpr_bench.errors import DataError
from vpr_bench.models import TinyGeMConfig, build_tiny_gem
from vpr_bench.specs import MethodSpec
from vpr_bench.weights import (
    STATE_DICT_LOADER,
    PcaWhitening,
    load_weights_file,
    sha256_file,
    state_dict_digest,
)

_calls: list[Path] = []


def load_foreign(path: Path, model: nn.Module) -> PcaWhitening | None:
    """A method's loader for files whose keys are prefixed ``theirs.`` and carry a PCA."""
    from vpr_bench.weights import compare_keys, safe_load

    _calls.append(Path(path))
    payload = safe_load(path)
    assert isinstance(payload, dict)
    state = {k.removeprefix("theirs."): v for k, v in payload.items() if k.startswith("theirs.")}
    report = compare_keys(model.state_dict(), state)
    if not report.ok:
        raise report.error(path, "tiny-gem (theirs)")
    model.load_state_dict(state)
    return PcaWhitening.from_linear(payload["pca.weight"], payload["pca.bias"])


def _method(loader: object | None) -> MethodSpec:
    return MethodSpec(
        name="foreign-method",
        model="tiny-gem",
        loss="triplet",
        trainer="triplet-mining",
        train_dataset="synthcity-train",
        weights_loader=loader,  # type: ignore[arg-type]
    )


def _model(seed: int) -> nn.Module:
    return build_tiny_gem(TinyGeMConfig(width=4, dim=8, seed=seed))


def _foreign_file(path: Path, source: nn.Module) -> Path:
    payload = {f"theirs.{k}": v for k, v in source.state_dict().items()}
    payload["pca.weight"], payload["pca.bias"] = torch.eye(3, 8), torch.zeros(3)
    torch.save(payload, path)
    return path


def test_vpr_bench_layout_loads_without_the_method_loader(tmp_path: Path) -> None:
    _calls.clear()
    source, target = _model(1), _model(2)
    path = tmp_path / "best.pt"
    torch.save({"model": source.state_dict()}, path)
    loaded = load_weights_file(target, path, method=_method(load_foreign))
    assert loaded.sha256 == sha256_file(path) and loaded.pca is None
    assert loaded.loader == STATE_DICT_LOADER and _calls == []
    assert state_dict_digest(target) == state_dict_digest(source)


def test_foreign_layout_goes_through_the_method_loader(tmp_path: Path) -> None:
    _calls.clear()
    source, target = _model(1), _model(2)
    path = _foreign_file(tmp_path / "theirs.pth", source)
    loaded = load_weights_file(target, path, method=_method(load_foreign))
    assert _calls == [path] and loaded.sha256 == sha256_file(path)
    assert loaded.loader.endswith(":load_foreign")
    assert loaded.pca is not None and loaded.pca.n_components == 3
    assert state_dict_digest(target) == state_dict_digest(source)
    lazy = load_weights_file(_model(3), path, method=_method(f"{__name__}:load_foreign"))
    assert lazy.loader == f"{__name__}:load_foreign"


def test_no_loader_lists_the_keys(tmp_path: Path) -> None:
    path = _foreign_file(tmp_path / "theirs.pth", _model(1))
    for method in (None, _method(None)):
        with pytest.raises(DataError) as info:
            load_weights_file(_model(2), path, method=method)
        message = str(info.value)
        assert "do not fit model TinyGeM" in message and "missing keys: " in message
        assert "unexpected keys: pca.bias, pca.weight, theirs." in message
        assert "no loader for files in another project's layout" in message


def test_a_loader_that_refuses_too_reports_both(tmp_path: Path) -> None:
    path = _foreign_file(tmp_path / "theirs.pth", build_tiny_gem(TinyGeMConfig(width=8, dim=8)))
    with pytest.raises(DataError) as info:
        load_weights_file(_model(2), path, method=_method(load_foreign))
    message = str(info.value)
    assert "fits neither the vpr-bench state-dict layout (missing keys:" in message
    assert "foreign-method's weights loader" in message and "shape mismatches:" in message


def test_a_hostile_file_never_reaches_a_loader(tmp_path: Path) -> None:
    class Hostile:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, (f"touch {tmp_path / 'ran'}",))

    _calls.clear()
    path = tmp_path / "hostile.pth"
    torch.save({"theirs.x": Hostile()}, path)
    with pytest.raises(DataError, match="refused to load"):
        load_weights_file(_model(2), path, method=_method(load_foreign))
    assert _calls == [] and not (tmp_path / "ran").exists()
