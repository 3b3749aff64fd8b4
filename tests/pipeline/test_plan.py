"""``plan_run`` resolves a whole run before any heavy work, and fails fast on bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vpr_bench.cli import main
from vpr_bench.errors import UnknownNameError, UsageError
from vpr_bench.pipeline.options import RunOptions
from vpr_bench.pipeline.plan import plan_run, select_methods
from vpr_bench.plugins import PluginManager
from vpr_bench.registry import Registries


@pytest.fixture(scope="module")
def registries() -> Registries:
    return PluginManager(autoload=False).registries()


def test_a_plan_holds_resolved_configs_the_target_and_the_device(registries: Registries) -> None:
    methods = select_methods(registries, ["tiny-triplet", "tiny-ms"], None)
    options = RunOptions(dataset="synthcity", profile="quick", sets=("trainer.epochs=2",), seed=7)
    plan = plan_run(registries, methods, options)
    assert [p.method.name for p in plan.methods] == ["tiny-triplet", "tiny-ms"]
    assert all(p.config.trainer.epochs == 2 and p.config.seed == 7 for p in plan.methods)
    assert all(p.config.profile == "quick" for p in plan.methods)
    assert (plan.target.spec.name, plan.target.split) == ("synthcity", "test")
    assert plan.target.protocol is not None and plan.target.protocol.name == "synthcity-test"
    assert plan.device == torch.device("cpu") and plan.splits.reads == 0  # nothing read yet


def test_a_protocol_name_selects_that_protocol(registries: Registries, tmp_path: Path) -> None:
    methods = select_methods(registries, ["tiny-triplet"], None)
    plan = plan_run(registries, methods, RunOptions(dataset="tokyo247-vg", data_root=tmp_path))
    assert plan.target.split == "vg" and plan.target.protocol is not None
    assert plan.target.protocol.name == "tokyo247-vg"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without CUDA")
def test_cuda_without_cuda_fails_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["run", "--methods", "tiny-triplet", "--dataset", "synthcity", "--device", "cuda"]
    args += ["--runs-dir", str(tmp_path / "runs"), "--leaderboards", str(tmp_path / "lb")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "--device cuda: CUDA is not available here; use --device cpu." in err
    assert not (tmp_path / "runs").exists() and not (tmp_path / "lb").exists()
    assert main(["eval", "tiny-gem", "--dataset", "synthcity", "--device", "cuda:0"]) == 2


def test_bad_devices_and_plans_are_usage_errors(registries: Registries) -> None:
    methods = select_methods(registries, ["tiny-triplet", "tiny-ms"], None)
    with pytest.raises(UsageError, match="--device must be auto, cpu, cuda or cuda:N"):
        plan_run(registries, methods[:1], RunOptions(dataset="synthcity", device="tpu"))
    with pytest.raises(UsageError, match="--weights needs exactly one method"):
        plan_run(registries, methods, RunOptions(dataset="synthcity", weights=Path("w.pt")))
    with pytest.raises(UsageError, match="no evaluation protocol"):
        plan_run(registries, methods[:1], RunOptions(dataset="synthcity-train"))
    with pytest.raises(UnknownNameError, match="synthcty"):
        plan_run(registries, methods[:1], RunOptions(dataset="synthcty"))
    with pytest.raises(UsageError, match="No method to run"):
        select_methods(registries, None, ["no-such-plugin"])


def test_seeds_run_every_method_once_per_seed(registries: Registries) -> None:
    methods = select_methods(registries, ["tiny-triplet", "tiny-ms"], None)
    plan = plan_run(registries, methods, RunOptions(dataset="synthcity", seeds=(3, 1, 2)))
    assert [(p.method.name, p.config.seed) for p in plan.methods] == [
        ("tiny-triplet", 3),
        ("tiny-triplet", 1),
        ("tiny-triplet", 2),
        ("tiny-ms", 3),
        ("tiny-ms", 1),
        ("tiny-ms", 2),
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--seeds", "0,x"], "expected comma-separated integers such as 0,1,2"),
        (["--seeds", "0,1,1"], "--seeds must list distinct integers >= 0"),
        (["--seeds", "0,1", "--seed", "4"], "--seed and --seeds exclude each other"),
    ],
)
def test_bad_seed_lists_are_usage_errors(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    command = ["--no-autoload", "run", "--methods", "tiny-triplet", "--dataset", "synthcity"]
    try:
        code = main([*command, *args])
    except SystemExit as exc:  # argparse refuses a malformed list itself
        code = exc.code
    assert code == 2 and message in capsys.readouterr().err
