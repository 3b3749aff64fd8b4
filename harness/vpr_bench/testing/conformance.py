"""Base test classes that check a component honours the runtime contracts of its spec.

The contracts are those of :class:`~vpr_bench.specs.ModelSpec` (descriptor shape, unit norm,
batch independence, gradients, state dict) and :class:`~vpr_bench.specs.LossSpec` (a finite,
differentiable scalar over the batch of its :class:`~vpr_bench.specs.BatchKind`, with tuples
independent of each other). Subclass one in your plugin's tests and set its class attributes;
pytest runs every check::

    from vpr_bench.testing import LossConformance, ModelConformance

    class TestNetVLAD(ModelConformance):
        plugins = ("vpr_bench_netvlad.plugin",)
        model_name = "netvlad"
        model_overrides = {"backbone": "tiny", "num_clusters": 8}

    class TestSareJoint(LossConformance):
        plugins = ("vpr_bench_netvlad.plugin", "vpr_bench_sare.plugin")
        loss_name = "sare-joint"
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any, ClassVar

import pytest
import torch
from torch import nn

from vpr_bench.config import apply_overrides
from vpr_bench.plugins import PluginManager
from vpr_bench.registry import resolve
from vpr_bench.specs import BatchKind, LossSpec, ModelSpec
from vpr_bench.weights import safe_load

__all__ = ["LossConformance", "ModelConformance", "make_loss_batch"]


def _build(spec: ModelSpec | LossSpec, overrides: Mapping[str, Any]) -> Any:
    config_cls = resolve(spec.config_cls)
    config = apply_overrides(config_cls(), overrides, source=f"{spec.name} test overrides")
    return resolve(spec.build)(config)


class ModelConformance:
    """Checks every model must pass: shape, unit norm, batch independence, gradients, state dict.

    Attributes:
        plugins: Plugin modules to load beside the built-ins (dependencies first).
        model_name: The registered model name.
        model_overrides: Config overrides that make the model small enough for a CPU test.
        input_size: ``(height, width)`` of the test images.
        frozen_ok: Names of trainable parameters allowed to receive no gradient.
        atol: Tolerance of the equality checks.
    """

    plugins: ClassVar[tuple[str, ...]] = ()
    model_name: ClassVar[str] = ""
    model_overrides: ClassVar[Mapping[str, Any]] = {}
    input_size: ClassVar[tuple[int, int]] = (48, 64)
    frozen_ok: ClassVar[tuple[str, ...]] = ()
    atol: ClassVar[float] = 1e-5

    @pytest.fixture
    def spec(self, vpr_plugin_manager: PluginManager) -> ModelSpec:
        """The model spec, looked up through the isolated plugin manager."""
        assert self.model_name, "Set model_name on your ModelConformance subclass."
        return vpr_plugin_manager.registries().models.get(self.model_name)

    @pytest.fixture
    def model(self, spec: ModelSpec) -> nn.Module:
        """A freshly built model in eval mode."""
        torch.manual_seed(0)
        model: nn.Module = _build(spec, self.model_overrides)
        return model.eval()

    def images(self, batch: int, seed: int = 0) -> torch.Tensor:
        """Deterministic random images ``[batch, 3, H, W]``."""
        generator = torch.Generator().manual_seed(seed)
        return torch.randn(batch, 3, *self.input_size, generator=generator)

    def test_descriptor_shape_dtype_and_dim(self, model: nn.Module) -> None:
        """Eval forward maps [B,3,H,W] to float32 [B, descriptor_dim]."""
        dim = getattr(model, "descriptor_dim", None)
        assert isinstance(dim, int) and dim > 0, "The model must expose an int descriptor_dim."
        with torch.no_grad():
            out = model(self.images(3))
        assert out.shape == (3, dim)
        assert out.dtype == torch.float32

    def test_descriptors_are_unit_norm(self, model: nn.Module) -> None:
        """Every descriptor has L2 norm 1."""
        with torch.no_grad():
            norms = model(self.images(4)).norm(dim=1)
        torch.testing.assert_close(norms, torch.ones(4), atol=self.atol, rtol=0)

    def test_batch_independence(self, model: nn.Module) -> None:
        """A descriptor does not depend on its batch-mates."""
        images = self.images(3)
        with torch.no_grad():
            together = model(images)
            alone = torch.cat([model(images[i : i + 1]) for i in range(3)])
        torch.testing.assert_close(together, alone, atol=self.atol, rtol=1e-4)

    def test_gradients_reach_trainable_parameters(self, model: nn.Module) -> None:
        """Every trainable parameter receives a finite, non-zero gradient in train mode."""
        model.train()
        out = model(self.images(2))
        probe = torch.randn(out.shape, generator=torch.Generator().manual_seed(1))
        (out * probe).sum().backward()
        for name, param in model.named_parameters():
            if not param.requires_grad or name in self.frozen_ok:
                continue
            assert param.grad is not None, f"Trainable parameter {name} got no gradient."
            assert torch.isfinite(param.grad).all(), f"Gradient of {name} is not finite."
            assert param.grad.abs().sum() > 0, f"Gradient of {name} is zero everywhere."

    def test_state_dict_round_trip(self, spec: ModelSpec, model: nn.Module) -> None:
        """Weights saved and loaded (weights_only) into a fresh model give the same outputs."""
        buffer = io.BytesIO()
        torch.save(model.state_dict(), buffer)
        buffer.seek(0)
        torch.manual_seed(12345)
        fresh: nn.Module = _build(spec, self.model_overrides)
        state = safe_load(buffer, name=f"the state dict of {spec.name}")
        assert isinstance(state, dict), f"{spec.name}: state_dict() is not a dict"
        fresh.load_state_dict(state)
        fresh.eval()
        images = self.images(2)
        with torch.no_grad():
            torch.testing.assert_close(fresh(images), model(images), atol=self.atol, rtol=1e-5)


def make_loss_batch(
    kind: BatchKind, generator: torch.Generator, dim: int = 16
) -> tuple[torch.Tensor, ...]:
    """A small synthetic batch of unit descriptors for a loss of ``kind``.

    Conventions (what a loss's forward takes):
        tuples: ``anchors [B,D], positives [B,P,D], negatives [B,N,D]``;
        places: ``descriptors [P*K,D], labels [P*K]`` (int64 place labels);
        domain-pairs: ``domain_a [B,D], domain_b [B,D]`` (row i of both is the same place).
    """

    def unit(*shape: int) -> torch.Tensor:
        x = torch.randn(*shape, dim, generator=generator, dtype=torch.float64)
        return nn.functional.normalize(x, dim=-1).requires_grad_(True)

    if kind is BatchKind.TUPLES:
        return unit(3), unit(3, 1), unit(3, 5)
    if kind is BatchKind.PLACES:
        return unit(8), torch.arange(4).repeat_interleave(2)
    return unit(4), unit(4)


class LossConformance:
    """Checks every loss must pass: finite scalar, differentiable, decreases when optimised.

    Attributes:
        plugins: Plugin modules to load beside the built-ins (dependencies first).
        loss_name: The registered loss name.
        loss_overrides: Config overrides.
        steps: Optimisation steps of the decrease check.
    """

    plugins: ClassVar[tuple[str, ...]] = ()
    loss_name: ClassVar[str] = ""
    loss_overrides: ClassVar[Mapping[str, Any]] = {}
    steps: ClassVar[int] = 30

    @pytest.fixture
    def spec(self, vpr_plugin_manager: PluginManager) -> LossSpec:
        """The loss spec, looked up through the isolated plugin manager."""
        assert self.loss_name, "Set loss_name on your LossConformance subclass."
        return vpr_plugin_manager.registries().losses.get(self.loss_name)

    @pytest.fixture
    def loss(self, spec: LossSpec) -> nn.Module:
        """A freshly built loss module."""
        module: nn.Module = _build(spec, self.loss_overrides)
        return module

    def batch(self, spec: LossSpec, seed: int = 0) -> tuple[torch.Tensor, ...]:
        """The synthetic batch for the loss's batch kind."""
        return make_loss_batch(spec.batch_kind, torch.Generator().manual_seed(seed))

    def test_finite_scalar(self, spec: LossSpec, loss: nn.Module) -> None:
        """The loss is a finite 0-d tensor."""
        value = loss(*self.batch(spec))
        assert isinstance(value, torch.Tensor) and value.ndim == 0
        assert torch.isfinite(value)

    def test_differentiable(self, spec: LossSpec, loss: nn.Module) -> None:
        """Gradients flow to the descriptors and are finite and not all zero."""
        batch = self.batch(spec)
        value: torch.Tensor = loss(*batch)
        value.backward()
        grads = [t.grad for t in batch if t.requires_grad]
        assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
        assert sum(float(g.abs().sum()) for g in grads if g is not None) > 0

    def test_tuples_are_independent(self, spec: LossSpec, loss: nn.Module) -> None:
        """A tuple's loss and gradients depend only on that tuple's own rows (``tuples`` kind).

        The batch loss must be the mean (or the sum) of the tuples' own losses, each computed
        on a batch of that tuple alone; when one tuple's rows change, the other tuples' losses
        and gradients stay equal. ``anchors [B, D] - positives [B, P, D]`` breaks this: it
        broadcasts to ``[B, B, D]`` and compares every anchor with every positive (write
        ``anchors[:, None] - positives``). Rows of a ``places`` or ``domain-pairs`` batch are
        compared with each other by design, so those kinds skip this check.
        """
        if spec.batch_kind is not BatchKind.TUPLES:
            pytest.skip(f"rows of a {spec.batch_kind.value} batch interact by design")
        batch = [t.detach() for t in self.batch(spec)]
        changed = [t.clone() for t in batch]
        fresh = self.batch(spec, seed=1)
        for tensor, other in zip(changed, fresh, strict=True):
            tensor[0] = other[0].detach()  # a different first tuple, the others unchanged

        def per_tuple(inputs: list[torch.Tensor]) -> torch.Tensor:
            return torch.stack(
                [loss(*(t[i : i + 1] for t in inputs)) for i in range(len(inputs[0]))]
            )

        def batch_loss_and_grads(
            inputs: list[torch.Tensor],
        ) -> tuple[torch.Tensor, list[torch.Tensor]]:
            leaves = [t.clone().requires_grad_(True) for t in inputs]
            value: torch.Tensor = loss(*leaves)
            grads = torch.autograd.grad(value, leaves, allow_unused=True)
            return value.detach(), [
                g if g is not None else torch.zeros_like(t)
                for g, t in zip(grads, leaves, strict=True)
            ]

        with torch.no_grad():
            own, own_changed = per_tuple(batch), per_tuple(changed)
        total, grads = batch_loss_and_grads(batch)
        total_changed, grads_changed = batch_loss_and_grads(changed)
        reduction = "mean" if torch.allclose(total, own.mean(), rtol=1e-6, atol=1e-9) else "sum"
        message = (
            f"{spec.name}: the batch loss is neither the mean nor the sum of the per-tuple "
            "losses (each tuple computed alone): tuples interact. Compare each anchor with its "
            "own tuple's rows: anchors[:, None] - positives, not anchors - positives "
            "([B, D] - [B, P, D] broadcasts to [B, B, D])."
        )
        for value, parts in ((total, own), (total_changed, own_changed)):
            expected = parts.mean() if reduction == "mean" else parts.sum()
            assert torch.allclose(value, expected, rtol=1e-6, atol=1e-9), message
        for name, grad, grad_changed in zip(
            ("anchors", "positives", "negatives"), grads, grads_changed, strict=True
        ):
            torch.testing.assert_close(
                grad_changed[1:],
                grad[1:],
                msg=f"{spec.name}: changing tuple 0 changed the gradient of the other tuples' "
                f"{name}; a tuple's loss must depend only on its own rows.",
            )

    def test_decreases_when_optimised(self, spec: LossSpec, loss: nn.Module) -> None:
        """Gradient descent on the raw descriptors lowers the loss."""
        raw = [t.detach().clone().requires_grad_(t.is_floating_point()) for t in self.batch(spec)]
        params = [t for t in raw if t.requires_grad]
        optimiser = torch.optim.SGD(params, lr=0.5)

        def current() -> torch.Tensor:
            inputs = [nn.functional.normalize(t, dim=-1) if t.requires_grad else t for t in raw]
            value: torch.Tensor = loss(*inputs)
            return value

        start = float(current().detach())
        for _ in range(self.steps):
            optimiser.zero_grad()
            current().backward()
            optimiser.step()
        assert float(current().detach()) < start, (
            "The loss did not decrease under gradient descent."
        )
