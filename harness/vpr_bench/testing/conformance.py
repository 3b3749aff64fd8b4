"""Base test classes that check a component honours the runtime contracts of its spec.

The contracts are those of :class:`~vpr_bench.specs.ModelSpec` (descriptor shape, unit norm,
batch independence, gradients, state dict) and :class:`~vpr_bench.specs.LossSpec` (a finite,
differentiable scalar over the batch of its :class:`~vpr_bench.specs.BatchKind`, with tuples
independent of each other for the ``tuples`` and ``region-tuples`` kinds). Subclass one in your
plugin's tests and set its class attributes; pytest runs every check::

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
from collections.abc import Callable, Mapping
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

LossInput = torch.Tensor | int
"""One argument of a loss's forward: a tensor, or (``region-tuples``) the int generation."""

_ARGUMENT_NAMES: dict[BatchKind, tuple[str, ...]] = {
    BatchKind.TUPLES: ("anchors", "positives", "negatives"),
    BatchKind.PLACES: ("descriptors", "labels"),
    BatchKind.DOMAIN_PAIRS: ("domain_a", "domain_b"),
    BatchKind.REGION_TUPLES: (
        "anchors",
        "pairs",
        "sim_diff",
        "sim_diff_teacher",
        "diff_mask",
        "generation",
    ),
    BatchKind.DOMAIN_VIEWS: ("views",),
    BatchKind.DOMAIN_IMAGES: ("enc_a", "enc_b", "rec_a", "rec_b"),
}
"""The forward arguments of each batch kind, in order (for messages)."""

_UNIT_ARGUMENTS: dict[BatchKind, tuple[int, ...]] = {
    BatchKind.TUPLES: (0, 1, 2),
    BatchKind.PLACES: (0,),
    BatchKind.DOMAIN_PAIRS: (0, 1),
    BatchKind.REGION_TUPLES: (0, 1),
    BatchKind.DOMAIN_VIEWS: (0,),
    BatchKind.DOMAIN_IMAGES: (),
}
"""The arguments that are L2-normalised descriptors (the others, e.g. similarities, are not)."""

_INDEPENDENT_TUPLES = (BatchKind.TUPLES, BatchKind.REGION_TUPLES, BatchKind.DOMAIN_IMAGES)
"""The kinds whose batch rows are independent tuples."""


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
        """Every trainable parameter receives a finite, non-zero gradient in train mode.

        A model declaring domains (``model.domains``, forward ``domain=``) runs once per
        domain, so each domain's parameters are reached; a two-stage model's
        ``second_stage`` descriptors count too. Parameters the descriptor does not use (a
        projection head only a loss sees) are exempt when the model lists their names in an
        ``auxiliary_parameters`` attribute.
        """
        model.train()
        domains = tuple(getattr(model, "domains", None) or ()) or (None,)
        stages: list[Callable[..., torch.Tensor]] = [model]
        second = getattr(model, "second_stage", None)
        if callable(second):
            stages.append(second)
        images = self.images(2)
        seed = 1
        for stage in stages:
            for domain in domains:
                out = stage(images) if domain is None else stage(images, domain=domain)
                probe = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed))
                (out * probe).sum().backward()
                seed += 1
        exempt = set(self.frozen_ok) | set(getattr(model, "auxiliary_parameters", ()))
        for name, param in model.named_parameters():
            if not param.requires_grad or name in exempt:
                continue
            assert param.grad is not None, f"Trainable parameter {name} got no gradient."
            assert torch.isfinite(param.grad).all(), f"Gradient of {name} is not finite."
            assert param.grad.abs().sum() > 0, f"Gradient of {name} is zero everywhere."

    def test_region_descriptors(self, spec: ModelSpec, model: nn.Module) -> None:
        """Region descriptors are ``[B, regions, D]``, unit norm, region 0 the eval descriptor.

        Checked for a model declaring ``ModelSpec.regions`` (``model(images, regions=True)``);
        skipped for the others.
        """
        if spec.regions == 0:
            pytest.skip(f"model {spec.name} declares no region descriptors")
        images = self.images(2)
        with torch.no_grad():
            plain = model(images)
            regions = model(images, regions=True)
        expected = (2, spec.regions, plain.shape[1])
        assert tuple(regions.shape) == expected, (
            f"model(images, regions=True) gave {tuple(regions.shape)}, expected {expected} "
            f"(ModelSpec.regions = {spec.regions})."
        )
        norms = regions.norm(dim=2)
        torch.testing.assert_close(norms, torch.ones_like(norms), atol=self.atol, rtol=0)
        torch.testing.assert_close(regions[:, 0], plain, atol=self.atol, rtol=1e-4)

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
    kind: BatchKind, generator: torch.Generator, dim: int = 16, n_views: int = 2
) -> tuple[LossInput, ...]:
    """A small synthetic float64 batch of unit descriptors for a loss of ``kind``.

    Conventions (what a loss's forward takes):
        tuples: ``anchors [B,D], positives [B,P,D], negatives [B,N,D]``;
        places: ``descriptors [P*K,D], labels [P*K]`` (int64 place labels);
        domain-pairs: ``domain_a [B,D], domain_b [B,D]`` (row i of both is the same place);
        region-tuples: ``anchors [B,R,D], pairs [B,1+N,R,D]`` (unit region descriptors, region
        0 global), ``sim_diff [B,P,R,R]`` (the anchors' regions against the regions of P
        difficult positives: a leaf that requires grad), ``sim_diff_teacher [B,P,R,R]`` (the
        same against perturbed positives, no gradient), ``diff_mask [B,P]`` (bool; tuple 1's
        last difficult positive is padding) and ``generation`` (the int 1);
        domain-views: ``views [B,V,D]`` with ``V = n_views`` (row i one item under V
        augmentations; rows are distinct items).
        domain-images: ``enc_a, enc_b, rec_a, rec_b [B,C,H,W]`` latent codes (not normalised;
        ``rec_x`` is ``enc_x`` plus noise and requires grad: a loss may stop the gradient of
        the direct encodings, as DISAM's L2 terms do).

    Tensors that require grad are the ones a loss is differentiated with respect to.
    """

    def unit(*shape: int) -> torch.Tensor:
        x = torch.randn(*shape, dim, generator=generator, dtype=torch.float64)
        return nn.functional.normalize(x, dim=-1).requires_grad_(True)

    if kind is BatchKind.TUPLES:
        return unit(3), unit(3, 1), unit(3, 5)
    if kind is BatchKind.PLACES:
        return unit(8), torch.arange(4).repeat_interleave(2)
    if kind is BatchKind.REGION_TUPLES:
        batch, regions, negatives, difficult = 3, 3, 4, 3
        anchors, pairs = unit(batch, regions), unit(batch, 1 + negatives, regions)
        positives = unit(batch, difficult, regions).detach()
        noise = torch.randn(positives.shape, generator=generator, dtype=torch.float64)
        teacher_positives = nn.functional.normalize(positives + 0.3 * noise, dim=-1)
        query = anchors.detach()
        sim_diff = torch.einsum("brd,bpsd->bprs", query, positives).requires_grad_(True)
        teacher = torch.einsum("brd,bpsd->bprs", query, teacher_positives)
        mask = torch.ones(batch, difficult, dtype=torch.bool)
        mask[1, -1] = False
        return anchors, pairs, sim_diff, teacher, mask, 1
    if kind is BatchKind.DOMAIN_VIEWS:
        if n_views < 1:
            raise ValueError(f"A domain-views batch needs n_views >= 1, not {n_views}.")
        return (unit(4, n_views),)
    if kind is BatchKind.DOMAIN_IMAGES:
        codes = torch.randn(2, 2, 4, 3, 3, generator=generator, dtype=torch.float64)
        noise = torch.randn(2, 2, 4, 3, 3, generator=generator, dtype=torch.float64)
        recs = codes + 0.5 * noise
        return (*codes, *(t.clone().requires_grad_(True) for t in recs))
    return unit(4), unit(4)


def _declared_views(loss: nn.Module, name: str) -> int:
    """The ``n_views`` a ``domain-views`` loss declares (a positive int)."""
    n_views = getattr(loss, "n_views", None)
    if isinstance(n_views, bool) or not isinstance(n_views, int) or n_views < 1:
        raise AssertionError(
            f"Loss {name} consumes domain-views batches but declares no n_views (a positive "
            f"int attribute: how many augmented views per item its forward takes), got "
            f"{n_views!r}."
        )
    return n_views


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

    def batch(self, spec: LossSpec, seed: int = 0) -> tuple[LossInput, ...]:
        """The synthetic batch for the loss's batch kind (see :func:`make_loss_batch`).

        A ``domain-views`` batch has the loss's ``n_views`` views per row.
        """
        n_views = 2
        if spec.batch_kind is BatchKind.DOMAIN_VIEWS:
            n_views = _declared_views(_build(spec, self.loss_overrides), spec.name)
        return make_loss_batch(
            spec.batch_kind, torch.Generator().manual_seed(seed), n_views=n_views
        )

    def test_finite_scalar(self, spec: LossSpec, loss: nn.Module) -> None:
        """The loss is a finite 0-d tensor."""
        value = loss(*self.batch(spec))
        assert isinstance(value, torch.Tensor) and value.ndim == 0
        assert torch.isfinite(value)

    def test_differentiable(self, spec: LossSpec, loss: nn.Module) -> None:
        """Gradients flow to the inputs that require grad and are finite and not all zero."""
        batch = self.batch(spec)
        value: torch.Tensor = loss(*batch)
        value.backward()
        grads = [t.grad for t in batch if isinstance(t, torch.Tensor) and t.requires_grad]
        assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
        assert sum(float(g.abs().sum()) for g in grads if g is not None) > 0

    def test_tuples_are_independent(self, spec: LossSpec, loss: nn.Module) -> None:
        """A tuple's loss and gradients depend only on that tuple's own rows.

        Checked for the ``tuples`` and ``region-tuples`` kinds, whose batches hold one tuple per
        row of every tensor (a ``region-tuples`` batch's ``generation`` is the same for all
        tuples and is passed unchanged to a slice). The batch loss must be the mean (or the
        sum) of the tuples' own losses, each computed on a batch of that tuple alone; when one
        tuple's rows change, the other tuples' losses and the gradients of their inputs that
        require grad stay equal. ``anchors [B, D] - positives [B, P, D]`` breaks this: it
        broadcasts to ``[B, B, D]`` and compares every anchor with every positive (write
        ``anchors[:, None] - positives``). Rows of a ``places`` or ``domain-pairs`` batch are
        compared with each other by design, so those kinds skip this check.
        """
        if spec.batch_kind not in _INDEPENDENT_TUPLES:
            pytest.skip(f"rows of a {spec.batch_kind.value} batch interact by design")
        original = self.batch(spec)
        differentiable = [isinstance(t, torch.Tensor) and t.requires_grad for t in original]
        batch = [t.detach() if isinstance(t, torch.Tensor) else t for t in original]
        changed = [t.clone() if isinstance(t, torch.Tensor) else t for t in batch]
        fresh = self.batch(spec, seed=1)
        for tensor, other in zip(changed, fresh, strict=True):
            if isinstance(tensor, torch.Tensor) and isinstance(other, torch.Tensor):
                tensor[0] = other[0].detach()  # a different first tuple, the others unchanged
        size = next(t for t in batch if isinstance(t, torch.Tensor)).shape[0]

        def per_tuple(inputs: list[LossInput]) -> torch.Tensor:
            return torch.stack(
                [
                    loss(*(t[i : i + 1] if isinstance(t, torch.Tensor) else t for t in inputs))
                    for i in range(size)
                ]
            )

        def batch_loss_and_grads(
            inputs: list[LossInput],
        ) -> tuple[torch.Tensor, list[torch.Tensor]]:
            args = [
                t.clone().requires_grad_(True) if wanted and isinstance(t, torch.Tensor) else t
                for t, wanted in zip(inputs, differentiable, strict=True)
            ]
            tensors = [
                t
                for t, wanted in zip(args, differentiable, strict=True)
                if wanted and isinstance(t, torch.Tensor)
            ]
            value: torch.Tensor = loss(*args)
            grads = torch.autograd.grad(value, tensors, allow_unused=True)
            return value.detach(), [
                g if g is not None else torch.zeros_like(t)
                for g, t in zip(grads, tensors, strict=True)
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
        names = [
            name
            for name, wanted in zip(_ARGUMENT_NAMES[spec.batch_kind], differentiable, strict=True)
            if wanted
        ]
        for name, grad, grad_changed in zip(names, grads, grads_changed, strict=True):
            torch.testing.assert_close(
                grad_changed[1:],
                grad[1:],
                msg=f"{spec.name}: changing tuple 0 changed the gradient of the other tuples' "
                f"{name}; a tuple's loss must depend only on its own rows.",
            )

    def test_decreases_when_optimised(self, spec: LossSpec, loss: nn.Module) -> None:
        """Gradient descent on the inputs that require grad lowers the loss.

        Descriptors are optimised raw and L2-normalised before each call; other inputs that
        require grad (a ``region-tuples`` batch's ``sim_diff``) are optimised as they are.
        """
        unit = _UNIT_ARGUMENTS[spec.batch_kind]
        raw: list[LossInput] = [
            t.detach().clone().requires_grad_(t.requires_grad) if isinstance(t, torch.Tensor) else t
            for t in self.batch(spec)
        ]
        params = [t for t in raw if isinstance(t, torch.Tensor) and t.requires_grad]
        optimiser = torch.optim.SGD(params, lr=0.5)

        def current() -> torch.Tensor:
            inputs = [
                nn.functional.normalize(t, dim=-1)
                if i in unit and isinstance(t, torch.Tensor) and t.requires_grad
                else t
                for i, t in enumerate(raw)
            ]
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
