"""Unit tests of the training loop (``Engine`` running a ``Paradigm``) on a toy regression.

The paradigm here needs no images: plan row ``i`` is sample ``i`` of a fixed in-memory tensor,
the model is one ``nn.Linear`` and the loss is the MSE of its output (or, where a constant
gradient makes the expectation exact, the mean output). Validation is stubbed by replacing the
``validate`` function that :func:`vpr_bench.train.validate.validate_splits` calls, so
best-checkpoint selection and early stopping follow a scripted metric sequence.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import vpr_bench.train.validate as validate_module
from tests.train.synth import VAL_PROTOCOL
from vpr_bench.data.split import GeoSplit
from vpr_bench.errors import VprBenchError
from vpr_bench.runtime import RunEvent
from vpr_bench.specs import IMAGENET
from vpr_bench.train import (
    Engine,
    LoopConfig,
    NonFiniteLossError,
    TrainContext,
    TrainingInterruptedError,
)
from vpr_bench.train.state import load_train_state

N_SAMPLES = 8
_gen = torch.Generator().manual_seed(1234)
X = torch.randn(N_SAMPLES, 3, generator=_gen)
Y = torch.randn(N_SAMPLES, 1, generator=_gen)
W0 = torch.tensor([[0.3, -0.2, 0.5]])
B0 = torch.tensor([0.1])

Params = dict[str, torch.Tensor]


def make_model() -> nn.Linear:
    """The same tiny linear model on every call."""
    model = nn.Linear(3, 1)
    with torch.no_grad():
        model.weight.copy_(W0)
        model.bias.copy_(B0)
    return model


def params(model: nn.Module) -> Params:
    """A detached copy of the model's parameters."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_equal(a: Params, b: Params) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), (key, a[key], b[key])


class Toy:
    """A ``Paradigm`` over in-memory rows: plan = ``rows`` (one column), loss = MSE.

    ``hooks`` maps a loss-call index (0-based, over the whole run) to ``"nan"`` (the loss becomes
    NaN, with NaN gradients) or ``"interrupt"`` (Ctrl-C inside the step).
    """

    def __init__(
        self,
        rows: Sequence[int],
        *,
        y: torch.Tensor = Y,
        n_rounds: int = 1,
        shuffle: bool = False,
        hooks: dict[int, str] | None = None,
    ) -> None:
        self.rows = list(rows)
        self.y = y
        self.n_rounds = n_rounds
        self.shuffle = shuffle
        self.hooks = hooks or {}
        self.calls = 0
        self.loaded: dict[str, torch.Tensor] | None = None

    def rounds(self, epoch: int) -> int:
        return self.n_rounds

    def make_plan(self, engine: Engine, epoch: int, round_idx: int) -> torch.Tensor:
        rows = torch.tensor(self.rows, dtype=torch.long)
        if self.shuffle:
            gen = torch.Generator().manual_seed(100 * epoch + round_idx)
            rows = rows[torch.randperm(len(rows), generator=gen)]
        return rows[:, None]

    def objective(self, engine: Engine, idx: torch.Tensor) -> torch.Tensor:
        return ((engine.forward(X[idx]) - self.y[idx]) ** 2).mean()

    def loss(self, engine: Engine, rows: torch.Tensor) -> torch.Tensor:
        hook = self.hooks.get(self.calls)
        self.calls += 1
        if hook == "interrupt":
            raise KeyboardInterrupt
        loss = self.objective(engine, rows[:, 0])
        return loss * float("nan") if hook == "nan" else loss

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"calls": torch.tensor(self.calls)}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.loaded = dict(state)


class ConstantGrad(Toy):
    """Loss = mean model output on all-ones inputs: d loss / d bias is exactly 1 every step."""

    def objective(self, engine: Engine, idx: torch.Tensor) -> torch.Tensor:
        return engine.forward(torch.ones(len(idx), 3)).mean()


def make_ctx(
    run_dir: Path,
    model: nn.Module,
    *,
    events: list[RunEvent] | None = None,
    emit: Callable[[RunEvent], None] | None = None,
    with_val: bool = False,
    resume: bool = False,
    **options: Any,
) -> TrainContext:
    """A CPU context: plain SGD (no momentum, decay or schedule) unless ``options`` say so."""
    base: dict[str, Any] = dict(
        epochs=1, lr=0.1, momentum=0.0, weight_decay=0.0, scheduler="none", max_bad_steps=3
    )
    base.update(options)

    def record(event: RunEvent) -> None:
        if events is not None:
            events.append(event)
        if emit is not None:
            emit(event)

    empty = GeoSplit(name="toy-train", database=(), queries=())
    val = GeoSplit(name="toy-val", database=(), queries=(), protocol=VAL_PROTOCOL)
    return TrainContext(
        model=model,
        loss=nn.Identity(),
        config=LoopConfig(**base),
        train_split=empty,
        val_split=val if with_val else None,
        preprocess=IMAGENET,
        run_dir=run_dir,
        seed=3,
        resume=resume,
        emit=record,
    )


def sgd_reference(idx: Sequence[int], y: torch.Tensor, lr: float) -> tuple[Params, Params]:
    """One hand-written plain-SGD step on the mean MSE over ``idx``: (gradients, new params)."""
    model = make_model()
    rows = torch.tensor(list(idx))
    ((model(X[rows]) - y[rows]) ** 2).mean().backward()
    grads = {"weight": model.weight.grad.clone(), "bias": model.bias.grad.clone()}  # type: ignore[union-attr]
    return grads, {"weight": W0 - lr * grads["weight"], "bias": B0 - lr * grads["bias"]}


def test_batch_rows_or_accum_steps_below_one_is_refused(tmp_path: Path) -> None:
    """Engine refuses batch_rows < 1 and trainer.accum_steps < 1 before doing anything."""
    with pytest.raises(VprBenchError, match="must be >= 1"):
        Engine(make_ctx(tmp_path / "a", make_model()), batch_rows=0)
    with pytest.raises(VprBenchError, match="must be >= 1"):
        Engine(make_ctx(tmp_path / "b", make_model(), accum_steps=0), batch_rows=2)


def test_accumulating_two_micro_batches_equals_one_step_on_their_union(tmp_path: Path) -> None:
    """accum_steps=2 over two 2-row micro-batches is one SGD step on the 4-row mean loss."""
    accum = Engine(make_ctx(tmp_path / "accum", make_model(), accum_steps=2), batch_rows=2)
    accum.run(Toy([0, 1, 2, 3]))
    whole = Engine(make_ctx(tmp_path / "whole", make_model()), batch_rows=4)
    whole.run(Toy([0, 1, 2, 3]))
    _, expected = sgd_reference([0, 1, 2, 3], Y, lr=0.1)
    assert accum.step == whole.step == 1
    for name, value in expected.items():
        torch.testing.assert_close(params(accum.model)[name], value, rtol=0, atol=1e-6)
        torch.testing.assert_close(params(whole.model)[name], value, rtol=0, atol=1e-6)


def test_grad_clip_bounds_the_update_to_lr_times_clip(tmp_path: Path) -> None:
    """With grad_clip=c the SGD update is -lr * c * g/|g|, not -lr * g."""
    far = Y + 50.0  # far targets: a gradient norm in the hundreds
    grads, _ = sgd_reference([0, 1], far, lr=1.0)
    norm = torch.cat([g.flatten() for g in grads.values()]).norm()
    assert norm > 10.0
    engine = Engine(make_ctx(tmp_path, make_model(), lr=1.0, grad_clip=0.5), batch_rows=2)
    engine.run(Toy([0, 1], y=far))
    after = params(engine.model)
    delta = torch.cat([(after["weight"] - W0).flatten(), after["bias"] - B0])
    expected = -0.5 * torch.cat([g.flatten() for g in grads.values()]) / norm
    assert float(delta.norm()) == pytest.approx(0.5, rel=1e-5)
    torch.testing.assert_close(delta, expected, rtol=1e-5, atol=1e-6)


def test_non_finite_steps_are_skipped_without_touching_weights_or_momentum(tmp_path: Path) -> None:
    """NaN steps (fewer than max_bad_steps in a row) leave weights and momentum as if absent."""
    sgd = dict(momentum=0.9, weight_decay=0.01, max_bad_steps=3)
    poisoned = Toy(range(6), hooks={1: "nan", 3: "nan", 4: "nan"})
    engine = Engine(make_ctx(tmp_path / "nan", make_model(), **sgd), batch_rows=1)
    outcome = engine.run(poisoned)
    clean = Engine(make_ctx(tmp_path / "clean", make_model(), **sgd), batch_rows=1)
    reference = clean.run(Toy([0, 2, 5]))
    assert (engine.step, engine.skipped) == (3, 3)
    assert outcome.history[0]["skipped_steps"] == 3
    assert outcome.history[0]["loss"] == pytest.approx(reference.history[0]["loss"], rel=1e-6)
    assert_equal(params(engine.model), params(clean.model))


def test_max_bad_steps_consecutive_nan_losses_abort_the_run(tmp_path: Path) -> None:
    """The 3rd NaN step in a row (max_bad_steps=3) raises NonFiniteLossError, weights intact."""
    events: list[RunEvent] = []
    paradigm = Toy(range(6), hooks=dict.fromkeys(range(6), "nan"))
    engine = Engine(make_ctx(tmp_path, make_model(), events=events), batch_rows=1)
    with pytest.raises(NonFiniteLossError, match="3 consecutive steps"):
        engine.run(paradigm)
    assert paradigm.calls == 3 and engine.step == 0 and engine.skipped == 3
    assert_equal(params(engine.model), {"weight": W0, "bias": B0})
    kinds = [e.kind for e in events]
    assert kinds[-1] == "run-failed" and "run-finished" not in kinds
    assert "NonFiniteLossError" in events[-1].payload["error"]


def test_step_scheduler_halves_lr_every_step_size_epochs(tmp_path: Path) -> None:
    """StepLR(2, 0.5) from lr 0.1: epochs 1-2 step with 0.1 and epochs 3-4 with 0.05."""
    biases: list[float] = []
    engine: Engine | None = None

    def on_epoch(event: RunEvent) -> None:
        if event.kind == "epoch-ended":
            assert engine is not None
            biases.append(float(engine.model.bias.detach()))

    ctx = make_ctx(tmp_path, make_model(), emit=on_epoch, epochs=4, scheduler="step")
    ctx.config.step_size, ctx.config.gamma = 2, 0.5
    engine = Engine(ctx, batch_rows=1)
    outcome = engine.run(ConstantGrad([0]))
    assert [h["lr"] for h in outcome.history] == pytest.approx([0.1, 0.1, 0.05, 0.05])
    # One step per epoch with d loss / d bias = 1: the bias falls by exactly that epoch's lr.
    steps = [b0 - b1 for b0, b1 in zip([float(B0), *biases], biases, strict=False)]
    assert steps == pytest.approx([0.1, 0.1, 0.05, 0.05], rel=1e-5)


def test_best_checkpoint_follows_select_metric_and_early_stop_counts_validations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """best.pt is the epoch with the highest R@5 (ties do not improve); patience 3 stops at 5."""
    r5 = [0.2, 0.5, 0.4, 0.5, 0.3, 0.9]
    r1 = [0.9, 0.1, 0.1, 0.1, 0.1, 0.1]  # R@1 peaks elsewhere: selection must ignore it
    snapshots: list[Params] = []

    def scripted_validate(model: nn.Module, *args: Any, **kwargs: Any) -> dict[str, float]:
        snapshots.append(params(model))
        i = len(snapshots) - 1
        return {"R@1": r1[i], "R@5": r5[i]}

    monkeypatch.setattr(validate_module, "validate", scripted_validate)
    events: list[RunEvent] = []
    ctx = make_ctx(
        tmp_path, make_model(), events=events, with_val=True, epochs=6, early_stop_patience=3
    )
    outcome = Engine(ctx, batch_rows=2).run(Toy([0, 1, 2, 3]))

    assert len(snapshots) == len(outcome.history) == 5
    assert [h["val"]["R@5"] for h in outcome.history] == r5[:5]
    ended = [e.payload["early_stop"] for e in events if e.kind == "epoch-ended"]
    assert ended == [False, False, False, False, True]
    assert outcome.best_val == {"R@1": 0.1, "R@5": 0.5}
    assert outcome.best_checkpoint == tmp_path / "checkpoints" / "best.pt"
    state, meta = load_train_state(outcome.best_checkpoint)
    assert meta["epoch"] == 2 and meta["val"] == {"R@1": 0.1, "R@5": 0.5}
    assert not torch.equal(snapshots[1]["weight"], snapshots[3]["weight"])
    assert_equal(state["model"], snapshots[1])


def test_several_val_splits_select_on_the_mean_of_the_metric(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three val splits (DaCo's A->B, B->A, A<->B): the epoch with the best mean R@1 is kept.

    Split "ab" alone would pick epoch 1 and "cross" alone epoch 3; the means are 0.4, 0.5 and
    0.3 (hand-computed), so best.pt is epoch 2's weights.
    """
    scripted = {
        "toy-ab": [0.9, 0.6, 0.1],
        "toy-ba": [0.2, 0.5, 0.2],
        "toy-cross": [0.1, 0.4, 0.6],
    }
    calls: list[str] = []
    snapshots: list[Params] = []

    def scripted_validate(
        model: nn.Module, split: GeoSplit, *args: Any, **kwargs: Any
    ) -> dict[str, float]:
        calls.append(split.name)
        if split.name == "toy-ab":
            snapshots.append(params(model))
        epoch = calls.count(split.name) - 1
        r1 = scripted[split.name][epoch]
        return {"R@1": r1, "R@5": 1.0} if split.name != "toy-cross" else {"R@1": r1}

    monkeypatch.setattr(validate_module, "validate", scripted_validate)
    splits = tuple(
        GeoSplit(name=name, database=(), queries=(), protocol=VAL_PROTOCOL) for name in scripted
    )
    ctx = make_ctx(tmp_path, make_model(), epochs=3, select_metric="R@1")
    ctx = dataclasses.replace(ctx, val_splits=splits)
    assert ctx.val_split is splits[0]
    outcome = Engine(ctx, batch_rows=2).run(Toy([0, 1, 2, 3]))

    assert calls == list(scripted) * 3
    means = [h["val"]["R@1"] for h in outcome.history]
    assert means == pytest.approx([0.4, 0.5, 0.3])
    # R@5 is not reported by every split, so it has no mean.
    assert all(set(h["val"]) == {"R@1"} for h in outcome.history)
    assert outcome.history[0]["val_splits"]["toy-cross"] == {"R@1": 0.1}
    assert outcome.best_val == pytest.approx({"R@1": 0.5})
    state, meta = load_train_state(outcome.best_checkpoint)  # type: ignore[arg-type]
    assert meta["epoch"] == 2
    assert_equal(state["model"], snapshots[1])


def test_a_single_val_split_keeps_its_metrics_and_no_per_split_entry(tmp_path: Path) -> None:
    """``val_split`` alone becomes ``val_splits == (val_split,)``."""
    ctx = make_ctx(tmp_path, make_model(), with_val=True)
    assert ctx.val_splits == (ctx.val_split,)
    plain = make_ctx(tmp_path / "none", make_model())
    assert plain.val_splits == () and plain.val_split is None


def test_checkpoint_every_n_steps_writes_last_pt_and_matching_sidecar(tmp_path: Path) -> None:
    """checkpoint_every_steps=2 saves last.pt at steps 2, 4, 6 with the loop position and JSON."""
    seen: list[tuple[int, int, int, int, bool]] = []
    engine: Engine | None = None

    def on_save(event: RunEvent) -> None:
        if event.kind != "checkpoint-saved" or not event.payload["path"].endswith("last.pt"):
            return
        path = Path(event.payload["path"])
        assert engine is not None
        state, meta = load_train_state(path)
        sidecar = json.loads(path.with_suffix(".json").read_text())
        assert sidecar == meta and sidecar["step"] == event.payload["step"] == engine.step
        assert_equal(state["model"], params(engine.model))
        loop = state["loop"]
        seen.append((meta["epoch"], loop["round"], loop["pos"], loop["step"], loop["has_plan"]))

    ctx = make_ctx(tmp_path, make_model(), emit=on_save, checkpoint_every_steps=2)
    engine = Engine(ctx, batch_rows=1)
    outcome = engine.run(Toy(range(6)))
    # Mid-epoch saves keep the plan and the position in it; the epoch-end save starts epoch 1.
    assert seen == [
        (0, 0, 2, 2, True),
        (0, 0, 4, 4, True),
        (0, 0, 6, 6, True),
        (1, 0, 0, 6, False),
    ]
    assert outcome.final_checkpoint == tmp_path / "checkpoints" / "final.pt"
    assert (tmp_path / "checkpoints" / "final.json").is_file()
    assert outcome.best_checkpoint is None and outcome.best_val == {}


def test_ctrl_c_mid_step_saves_a_checkpoint_that_resumes_identically(tmp_path: Path) -> None:
    """Ctrl-C in a step's 2nd micro-batch saves the pre-step position; resuming ends bit-equal."""
    options = dict(epochs=2, accum_steps=2, momentum=0.9, checkpoint_every_steps=0)
    reference = Engine(make_ctx(tmp_path / "ref", make_model(), **options), batch_rows=1)
    reference.run(Toy(range(6), shuffle=True))

    # 2 micro-batches per step, 3 steps per epoch: call 9 is step 5's second micro-batch.
    run_dir = tmp_path / "run"
    crashing = Toy(range(6), shuffle=True, hooks={9: "interrupt"})
    with pytest.raises(TrainingInterruptedError) as info:
        Engine(make_ctx(run_dir, make_model(), **options), batch_rows=1).run(crashing)
    assert info.value.exit_code == 130
    state, meta = load_train_state(run_dir / "checkpoints" / "last.pt")
    loop = state["loop"]
    assert (meta["epoch"], loop["round"], loop["pos"], loop["step"]) == (1, 0, 2, 4)
    assert loop["has_plan"] and loop["plan"].flatten().tolist() == (
        crashing.make_plan(reference, 1, 0).flatten().tolist()
    )

    resumed_paradigm = Toy(range(6), shuffle=True)
    resumed = Engine(make_ctx(run_dir, make_model(), resume=True, **options), batch_rows=1)
    resumed.run(resumed_paradigm)
    assert resumed_paradigm.loaded == {"calls": torch.tensor(10)}
    assert resumed.step == reference.step == 6
    assert_equal(params(resumed.model), params(reference.model))


def test_resumed_epoch_reports_the_same_mean_loss_as_an_uninterrupted_one(tmp_path: Path) -> None:
    """A run crashed after the step-2 checkpoint and resumed records the same epoch loss."""
    options = dict(checkpoint_every_steps=2)
    reference = Engine(make_ctx(tmp_path / "ref", make_model(), **options), batch_rows=1)
    expected = reference.run(Toy(range(4))).history[0]["loss"]

    def crash_at_step_2(event: RunEvent) -> None:
        if event.kind == "checkpoint-saved" and event.payload["step"] == 2:
            raise RuntimeError("simulated crash")

    run_dir = tmp_path / "run"
    with pytest.raises(RuntimeError, match="simulated crash"):
        Engine(make_ctx(run_dir, make_model(), emit=crash_at_step_2, **options), 1).run(
            Toy(range(4))
        )
    resumed = Engine(make_ctx(run_dir, make_model(), resume=True, **options), batch_rows=1)
    outcome = resumed.run(Toy(range(4)))
    assert_equal(params(resumed.model), params(reference.model))  # the weights do match
    assert outcome.history[0]["loss"] == pytest.approx(expected, rel=1e-6)


def test_accumulation_with_a_short_last_micro_batch_weights_rows_equally(tmp_path: Path) -> None:
    """accum_steps=2 over micro-batches of 2 and 1 rows equals one step on the 3-row mean."""
    engine = Engine(make_ctx(tmp_path, make_model(), accum_steps=2), batch_rows=2)
    engine.run(Toy([0, 1, 2]))
    _, expected = sgd_reference([0, 1, 2], Y, lr=0.1)
    assert engine.step == 1
    for name, value in expected.items():
        torch.testing.assert_close(params(engine.model)[name], value, rtol=0, atol=1e-6)


def test_final_sidecar_records_the_last_epoch(tmp_path: Path) -> None:
    """final.json of a 3-epoch run says epoch 3, like last.json."""
    outcome = Engine(make_ctx(tmp_path, make_model(), epochs=3), batch_rows=2).run(Toy([0, 1]))
    assert outcome.final_checkpoint is not None
    _, last = load_train_state(tmp_path / "checkpoints" / "last.pt")
    _, final = load_train_state(outcome.final_checkpoint)
    assert last["epoch"] == 3
    assert final["epoch"] == 3
