"""Typed specs validate themselves; the registries resolve names and check compatibility."""

from __future__ import annotations

import pytest

from vpr_bench.errors import IncompatibleError, PluginError, UnknownNameError
from vpr_bench.protocol import EvalProtocol, ResizePolicy
from vpr_bench.registry import Registries, resolve
from vpr_bench.specs import (
    BatchKind,
    Checkpoint,
    DatasetSpec,
    LossSpec,
    MethodSpec,
    ModelSpec,
    RemoteFile,
    TrainerSpec,
)
from vpr_bench.testing import isolated_manager


def test_names_are_normalised_and_validated() -> None:
    spec = ModelSpec("My_Net.V2", build="a.b:c", config_cls="a.b:C")
    assert spec.name == "my-net-v2"
    with pytest.raises(ValueError, match="not valid: use letters, digits and '-'"):
        ModelSpec("net/vlad", build="a.b:c", config_cls="a.b:C")
    with pytest.raises(ValueError, match="'package.module:object'"):
        ModelSpec("x", build="a.b.c", config_cls="a.b:C")


def test_dataset_spec_checks_splits_protocols_and_pairs() -> None:
    protocol = EvalProtocol("demo-test", split="test")
    with pytest.raises(ValueError, match="default_split 'val' is not one of"):
        DatasetSpec("demo", 1, ("test",), load="a.b:c", default_split="val")
    with pytest.raises(ValueError, match="names split 'test', which is not one of"):
        DatasetSpec("demo", 1, ("val",), load="a.b:c", default_split="val", protocols=(protocol,))
    with pytest.raises(ValueError, match="'domain-pairs' needs load_pairs"):
        DatasetSpec("demo", 1, ("test",), load="a.b:c", provides=frozenset({"domain-pairs"}))


def test_protocol_validation_and_digest() -> None:
    with pytest.raises(ValueError, match="recall_ns must be sorted and unique"):
        EvalProtocol("x", recall_ns=(5, 1))
    with pytest.raises(ValueError, match="needs a positive height and width"):
        ResizePolicy("hard", height=480)
    a = EvalProtocol("x", query_resize=ResizePolicy.shorter_side(640))
    assert a.digest() == EvalProtocol.from_dict(a.to_dict()).digest()
    assert a.digest() != EvalProtocol("x", version=2).digest() and a.key == "x@v1"


def test_resize_interpolation_is_validated_described_and_digested_only_when_bicubic() -> None:
    from vpr_bench.data.synthcity.spec import SYNTHCITY

    with pytest.raises(ValueError, match="interpolation must be bilinear or bicubic, not 'area'"):
        ResizePolicy.hard(64, 64, interpolation="area")  # type: ignore[arg-type]
    bicubic = ResizePolicy.hard(256, 256, interpolation="bicubic")
    assert bicubic.describe() == "256x256 bicubic"
    assert ResizePolicy.shorter_side(640).describe() == "shorter 640"
    assert "interpolation" not in ResizePolicy.hard(256, 256).to_dict()
    # The digest every committed synthcity record carries: bilinear protocols keep theirs.
    protocol = SYNTHCITY.protocol_for("test")
    assert protocol is not None and protocol.digest() == "2552750f9d739513"
    plain = EvalProtocol("x", db_resize=ResizePolicy.hard(256, 256))
    cubic = EvalProtocol("x", db_resize=bicubic)
    assert plain.digest() != cubic.digest()
    assert EvalProtocol.from_dict(cubic.to_dict()) == cubic


def test_remote_file_and_checkpoint_tags() -> None:
    with pytest.raises(ValueError, match="64 lowercase hex"):
        RemoteFile("https://example.org/w.pth", sha256="abc")
    ckpt = Checkpoint("zoo", RemoteFile("https://example.org/w.pth"), trained_on="pitts30k-train")
    with pytest.raises(ValueError, match="checkpoint tag twice"):
        MethodSpec("m", "net", "triplet", "triplet-mining", "x", checkpoints=(ckpt, ckpt))
    assert ckpt.file_name == "w.pth" and ckpt.load is None
    named = Checkpoint("zoo", RemoteFile("https://x.org/f/?a=1"), "x", filename="best.pth.tar")
    assert named.file_name == "best.pth.tar"
    with pytest.raises(ValueError, match=r"give filename= .*cannot be taken from 'https://x.org/'"):
        Checkpoint("zoo", RemoteFile("https://x.org/"), trained_on="x")
    with pytest.raises(ValueError, match=r"Checkpoint\(zoo\).load = 'nocolon' is not a lazy"):
        Checkpoint("zoo", RemoteFile("https://x.org/w.pth"), "x", load="nocolon")


def test_resolve_lazy_targets() -> None:
    assert resolve("vpr_bench.specs:BatchKind.PLACES") is BatchKind.PLACES
    with pytest.raises(PluginError, match="Cannot import 'no_such_module'"):
        resolve("no_such_module:x")
    with pytest.raises(PluginError, match="has no attribute 'Nope'"):
        resolve("vpr_bench.specs:Nope")


def test_dataset_names_resolve_to_splits() -> None:
    registries = isolated_manager().registries()
    assert registries.dataset_split("pitts30k-test")[1] == "test"
    assert registries.dataset_split("tokyo247-vg") == (registries.datasets.get("tokyo247"), "vg")
    assert registries.dataset_split("synthcity")[1] == "test"
    with pytest.raises(UnknownNameError, match="Did you mean: pitts30k-test"):
        registries.dataset_split("pits30k-test")


def test_compatibility_is_checked_with_what_would_fit() -> None:
    registries = isolated_manager().registries()
    places_loss = LossSpec("ms-x", build="a.b:c", config_cls="a.b:C", batch_kind=BatchKind.PLACES)
    registries.losses.add(places_loss.name, places_loss, "test", "test")
    method = MethodSpec("bad", "tiny-gem", "ms-x", "triplet-mining", "synthcity-train")
    with pytest.raises(IncompatibleError, match="Trainers that fit: place-batches"):
        registries.check_method(method)
    ok = MethodSpec("ok", "tiny-gem", "triplet", "triplet-mining", "csv-folder")
    with pytest.raises(IncompatibleError, match="provides no training data"):
        registries.check_method(ok)
    pairs = MethodSpec("pairs", "tiny-gem", "domain-infonce", "domain-pairs", "pitts30k-train")
    with pytest.raises(IncompatibleError, match="Datasets that fit: synthcity"):
        registries.check_method(pairs)


def test_registries_reject_unknown_kind() -> None:
    with pytest.raises(UnknownNameError, match="Did you mean: models"):
        Registries().by_kind("modles")


def test_trainer_needs_a_batch_kind() -> None:
    with pytest.raises(ValueError, match="at least one batch kind"):
        TrainerSpec("t", fit="a.b:c", batch_kinds=())
