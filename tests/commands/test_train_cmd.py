from __future__ import annotations

from pathlib import Path

import pytest

from vpr_bench.cli import main


def test_help_lists_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert "vpr-bench train tiny-triplet --dataset synthcity-train" in out
    assert "--resume RUN_DIR" in out


def test_unknown_method_suggests(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "tiny-triplett"]) == 2
    assert "Did you mean: tiny-triplet" in capsys.readouterr().err


def test_resume_refuses_config_changes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["train", "tiny-triplet", "--resume", str(tmp_path), "--set", "trainer.lr=1"])
    assert code == 2
    assert "--resume continues a run with its saved config.json" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("method", "condition", "gain"),
    [("tiny-triplet", None, 8.0), ("tiny-ms", None, 6.0), ("tiny-domain", "night", 4.0)],
)
def test_train_tiny_model_on_synthcity_tiny_beats_untrained_on_val(
    method: str, condition: str | None, gain: float, tmp_path: Path
) -> None:
    """The training-engine done-when: ``vpr-bench train`` on synthcity tiny improves val R@1.

    One method per built-in trainer. Measured on synthcity tiny v3 (seeds 0 / 1 / 2): untrained
    tiny-gem 22.0 % R@1 on the 150 val queries (one query is 0.67 points); best checkpoints of
    the quick profiles: tiny-triplet 34.0 / 37.3 / 39.3 %, tiny-ms 34.0 / 34.7 / 28.7 %.
    tiny-domain learns from same-pose day/night pairs, so it is judged on the 25 night queries
    of val: 16.0 % untrained, 24.0 / 28.0 / 24.0 % trained (one query is 4 points).
    """
    import dataclasses
    import json

    import torch

    from vpr_bench.data.synthcity import prepare
    from vpr_bench.data.synthcity.spec import SYNTHCITY, load_split
    from vpr_bench.plugins import PluginManager
    from vpr_bench.registry import resolve
    from vpr_bench.train.state import load_train_state
    from vpr_bench.train.validate import validate

    city = prepare(tmp_path / "data", "tiny", seed=0, progress=False)
    runs = tmp_path / "runs"
    args = ["train", method, "--dataset", "synthcity-train", "--data-root", str(city)]
    args += ["--profile", "quick", "--runs-dir", str(runs), "--device", "cpu", "--seed", "0"]
    assert main(args) == 0
    (run_dir,) = (runs / method).iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["best_checkpoint"] and summary["best_val"]

    registries = PluginManager(autoload=False).registries()
    model_spec = registries.models.get("tiny-gem")
    val = dataclasses.replace(load_split(city, "val"), protocol=SYNTHCITY.protocol_for("val"))
    assert len(val.queries) == 150
    if condition is not None:
        kept = tuple(q for q in val.queries if q.condition == condition)
        val = dataclasses.replace(val, queries=kept)
        assert len(kept) == 25

    def val_r1(state: dict[str, torch.Tensor] | None) -> float:
        model = resolve(model_spec.build)(None)
        if state is not None:
            model.load_state_dict(state)
        cpu = torch.device("cpu")
        return validate(model, val, model_spec.preprocess, size=None, device=cpu, batch_size=64)[
            "R@1"
        ]

    untrained = val_r1(None)
    trained = val_r1(load_train_state(Path(summary["best_checkpoint"]))[0]["model"])
    assert trained >= untrained + gain, (untrained, trained)
