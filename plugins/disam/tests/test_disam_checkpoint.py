"""Loading DISAM's released weights: files synthesised in the reference's layout.

The layout (one plain state dict per network, ``<epoch>_net_G<i>.pth`` encoders i < n and
decoders n <= i < 2n, ``<epoch>_net_D<i>.pth``) and every entry's name and shape come from
``manifest_disam.json``.
"""

from __future__ import annotations

import json
import tarfile
import zipfile
from pathlib import Path

import pytest
import torch

from vpr_bench.errors import DataError
from vpr_bench_disam.checkpoint import (
    find_network_files,
    load_plexer,
    load_released,
    opened,
)
from vpr_bench_disam.config import DisamConfig
from vpr_bench_disam.model import build_disam, build_translators
from vpr_bench_disam.released import load_cmu_coarse, load_cmu_fine

SMALL = {"n_domains": 3, "ngf": 4, "netg_blocks": 3, "image_size": 16}


@pytest.fixture(scope="module")
def manifest(oracles_dir: Path) -> dict:
    return json.loads((oracles_dir / "manifest_disam.json").read_text())


def _from_manifest(entries: list[dict], seed: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {e["name"]: torch.randn(e["shape"], generator=generator) for e in entries}


def _save_plexer(folder: Path, epoch: int, nets: dict[str, list[dict[str, torch.Tensor]]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    generators = nets["encoders"] + nets.get("decoders", [])
    for i, state in enumerate(generators):
        torch.save(state, folder / f"{epoch}_net_G{i}.pth")
    for i, state in enumerate(nets.get("discriminators", [])):
        torch.save(state, folder / f"{epoch}_net_D{i}.pth")


def _small_states(seed: int = 0) -> dict[str, list[dict[str, torch.Tensor]]]:
    torch.manual_seed(seed)
    config = DisamConfig(**SMALL, seed=seed)
    model = build_disam(config)
    decoders, discriminators = build_translators(config, ndf=4, seed=seed + 1)
    return {
        "encoders": [e.state_dict() for e in model.encoders],
        "decoders": [d.state_dict() for d in decoders],
        "discriminators": [d.state_dict() for d in discriminators],
    }


def test_released_cmu_encoders_from_manifest_files(manifest: dict, tmp_path: Path) -> None:
    """12 encoder files at the manifest's names and shapes load into a default ``disam``."""
    n = manifest["config"]["n_domains"]
    assert manifest["encoder"]["files"] == [f"<epoch>_net_G{i}.pth" for i in range(n)]
    states = [_from_manifest(manifest["encoder"]["entries"], seed=i) for i in range(n)]
    _save_plexer(tmp_path / "checkpoints" / "CMU_coarse", 1200, {"encoders": states})
    model = build_disam(DisamConfig(n_domains=n))
    assert load_cmu_coarse(tmp_path, model) is None
    for i in (0, n - 1):
        for name, value in model.encoders[i].state_dict().items():
            assert torch.equal(value, states[i][name]), (i, name)
    with pytest.raises(DataError, match="no folder 'CMU_fine' .* it holds: CMU_coarse \\(1200\\)"):
        load_cmu_fine(tmp_path, model)


def test_all_networks_round_trip_from_folder_zip_and_tar(tmp_path: Path) -> None:
    saved = _small_states(seed=0)
    folder = tmp_path / "extracted" / "checkpoints" / "CMU_fine"
    _save_plexer(folder, 1200, saved)
    zipped = tmp_path / "weights.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        for file in folder.iterdir():
            archive.write(file, f"checkpoints/CMU_fine/{file.name}")
    tarred = tmp_path / "weights.tar.gz"
    with tarfile.open(tarred, "w:gz") as archive:
        archive.add(folder, arcname="CMU_fine")
    config = DisamConfig(**SMALL)
    for source in (folder, tmp_path / "extracted", zipped, tarred):
        model = build_disam(DisamConfig(**SMALL, seed=5))
        decoders, discriminators = build_translators(config, ndf=4, seed=9)
        with opened(source) as root:
            load_plexer(
                find_network_files(root, "CMU_fine", 1200), model.encoders, decoders, discriminators
            )
        for nets, states in (
            (model.encoders, "encoders"),
            (decoders, "decoders"),
            (discriminators, "discriminators"),
        ):
            for net, state in zip(nets, saved[states], strict=True):
                for key, value in net.state_dict().items():
                    assert torch.equal(value, state[key]), (source, states, key)


def _one_folder(tmp_path: Path, change) -> Path:
    saved = _small_states()
    change(saved)
    folder = tmp_path / "CMU_coarse"
    _save_plexer(folder, 1200, saved)
    return folder


def test_file_that_does_not_fit_lists_every_problem(tmp_path: Path) -> None:
    def damage(saved: dict) -> None:
        state = saved["encoders"][1]
        del state["model.1.bias"]
        state["model.99.weight"] = torch.zeros(1)
        state["model.4.weight"] = torch.zeros(3, 3)

    folder = _one_folder(tmp_path, damage)
    model = build_disam(DisamConfig(**SMALL))
    with pytest.raises(DataError) as info:
        load_released(folder, model, "CMU_coarse", 1200)
    message = str(info.value)
    assert "1200_net_G1.pth" in message and "encoder 1" in message
    assert "missing model.1.bias" in message
    assert "unexpected model.99.weight" in message
    assert "mis-shaped (file vs model) model.4.weight (3, 3) vs (8, 4, 3, 3)" in message
    assert "\n" not in message


def test_missing_encoder_file_is_named(tmp_path: Path) -> None:
    folder = _one_folder(tmp_path, lambda saved: None)
    (folder / "1200_net_G2.pth").unlink()
    with pytest.raises(DataError, match=r"1200_net_G2.pth is missing \(encoder 2 of 3\)"):
        load_released(folder, build_disam(DisamConfig(**SMALL)), "CMU_coarse", 1200)


def test_other_domain_count_is_refused(tmp_path: Path) -> None:
    folder = _one_folder(tmp_path, lambda saved: None)
    model = build_disam(DisamConfig(**{**SMALL, "n_domains": 2}))
    with pytest.raises(DataError, match="hold 3 domains .* the model has 2; set model.n_domains"):
        load_released(folder, model, "CMU_coarse", 1200)


def test_not_a_state_dict_and_not_an_archive(tmp_path: Path) -> None:
    folder = _one_folder(tmp_path, lambda saved: None)
    torch.save([1, 2], folder / "1200_net_G0.pth")
    with pytest.raises(DataError, match="not a plain state dict"):
        load_released(folder, build_disam(DisamConfig(**SMALL)), "CMU_coarse", 1200)
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"nothing")
    with pytest.raises(DataError, match="neither a folder nor a .zip/.tar archive"), opened(junk):
        pass
    with pytest.raises(DataError, match="do not exist"), opened(tmp_path / "absent.zip"):
        pass


def test_wrong_model_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="load into a 'disam' model"):
        load_released(tmp_path, torch.nn.Linear(2, 2), "CMU_coarse", 1200)


def test_zip_member_escaping_is_refused(tmp_path: Path) -> None:
    zipped = tmp_path / "evil.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("../outside.pth", b"x")
    with pytest.raises(DataError, match="escapes its folder"), opened(zipped):
        pass


def test_c2f_loads_coarse_and_fine_folders(tmp_path: Path) -> None:
    from vpr_bench_disam.config import DisamC2FConfig
    from vpr_bench_disam.model import build_disam_c2f
    from vpr_bench_disam.released import load_cmu

    coarse, fine = _small_states(seed=1), _small_states(seed=2)
    _save_plexer(tmp_path / "checkpoints" / "CMU_coarse", 1200, coarse)
    _save_plexer(tmp_path / "checkpoints" / "CMU_fine", 1200, fine)
    model = build_disam_c2f(DisamC2FConfig(**SMALL))
    load_cmu(tmp_path, model)
    for part, saved in ((model.coarse, coarse), (model.fine, fine)):
        for encoder, state in zip(part.encoders, saved["encoders"], strict=True):
            for key, value in encoder.state_dict().items():
                assert torch.equal(value, state[key])
    with pytest.raises(DataError, match="loads into a 'disam-c2f' model"):
        load_cmu(tmp_path, build_disam(DisamConfig(**SMALL)))


def test_released_tags() -> None:
    from vpr_bench_disam.plugin import CMU_CHECKPOINTS, ROBOTCAR_CHECKPOINTS

    tags = [c.tag for c in (*CMU_CHECKPOINTS, *ROBOTCAR_CHECKPOINTS)]
    assert tags == [
        "disam-cmu-coarse",
        "disam-cmu-fine",
        "disam-cmu",
        "disam-robotcar-coarse",
        "disam-robotcar-fine",
    ]
    for checkpoint in (*CMU_CHECKPOINTS, *ROBOTCAR_CHECKPOINTS):
        assert checkpoint.file.sha256 is None  # a Drive page: downloaded by hand
        assert "1YM_kkVkwNpVXV8Iv38JjEZImcDYLdHsZ" in checkpoint.file.uri
        assert checkpoint.overrides["model.n_domains"] == (
            10 if "robotcar" in checkpoint.tag else 12
        )
