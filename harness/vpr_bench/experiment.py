"""The resolved configuration of one experiment: a method's model, loss and trainer options.

Resolution order (later wins): the dataclass defaults of the model, loss and trainer configs;
the method's profile (``MethodSpec.profiles[name]``); a TOML file (``--config``); ``--set``
overrides. Keys are dotted: ``model.num_clusters``, ``loss.margin``, ``trainer.lr``, ``seed``.

Once resolved, declared ranges are checked (:func:`~vpr_bench.ranges.check_ranges`), then each
section's optional ``check(experiment)`` method runs: the place for rules between options (a
pool at least as large as what is drawn from it; one loss temperature per trainer generation).
It raises :class:`~vpr_bench.errors.ConfigError` naming the keys.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vpr_bench.config import apply_overrides, config_hash, load_toml, parse_sets, to_dict
from vpr_bench.errors import ConfigError, UnknownNameError
from vpr_bench.ranges import bounded, check_ranges
from vpr_bench.registry import Registries, resolve
from vpr_bench.specs import MethodSpec

__all__ = ["ExperimentConfig", "NoOptions", "resolve_experiment"]


@dataclass
class NoOptions:
    """The config of a component that declares no options."""


@dataclass
class ExperimentConfig:
    """Everything that defines a training/evaluation run of a method.

    Attributes:
        method: The method name.
        profile: The profile applied (``""`` for plain defaults).
        seed: Seed of every random number generator.
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        pca_dim: PCA-whitening output dimension fitted after training (None: no PCA).
        train_dataset: ``--dataset`` style name of the training set (``""``: the method's
            default, ``MethodSpec.train_dataset``); profiles set it, e.g. ``synthcity-train``.
        val_dataset: ``--dataset`` style name of the model-selection split (never a test
            split; ``""``: the training dataset's ``val`` split when it has one). Several names
            separated by commas select on the mean of ``trainer.select_metric`` over them.
        pca_samples: At most this many training descriptors fit the PCA (OpenIBL: 10 000).
        model: The model's config dataclass.
        loss: The loss's config dataclass.
        trainer: The trainer's config dataclass.
    """

    method: str
    profile: str = ""
    seed: int = bounded(0, ge=0)
    device: str = "auto"
    pca_dim: int | None = bounded(None, ge=1)
    train_dataset: str = ""
    val_dataset: str = ""
    pca_samples: int = bounded(10000, ge=1)
    model: Any = field(default_factory=NoOptions)
    loss: Any = field(default_factory=NoOptions)
    trainer: Any = field(default_factory=NoOptions)

    def to_dict(self) -> dict[str, Any]:
        """The resolved config as a JSON-ready dict."""
        return to_dict(self)

    def digest(self) -> str:
        """Short hash of the resolved config."""
        return config_hash(self.to_dict())


def _instantiate(config_cls: type | str | None) -> Any:
    if config_cls is None:
        return NoOptions()
    cls = resolve(config_cls)
    return cls()


def resolve_experiment(
    method: MethodSpec,
    registries: Registries,
    *,
    profile: str | None = None,
    config_file: Path | None = None,
    sets: Sequence[str] = (),
    extra: Mapping[str, Any] | None = None,
    layers: Sequence[tuple[str, Mapping[str, Any]]] = (),
) -> ExperimentConfig:
    """Build the fully resolved config of ``method``.

    Args:
        method: The method spec.
        registries: Where the method's model, loss and trainer are looked up.
        profile: A key of ``method.profiles``, or None for plain defaults.
        config_file: A TOML file with ``[model]``, ``[loss]``, ``[trainer]`` tables and
            top-level ``seed``, ``device``, ``pca_dim``.
        sets: ``key=value`` overrides from the command line.
        extra: Typed overrides applied last (e.g. ``{"seed": 3}`` from ``--seed``).
        layers: Named typed override sets applied after the config file and before ``sets``
            (e.g. ``[("checkpoint 'openibl-sare-ind'", {...})]``: what released weights need,
            which ``--set`` can still change).

    Returns:
        The resolved :class:`ExperimentConfig`.

    Raises:
        UnknownNameError: Unknown profile.
        ConfigError: Unknown key or bad value in any layer (the message names the layer), or
            a numeric option outside its declared range (the message names the key), or
            options that contradict each other (a section's ``check``).
    """
    model = registries.models.get(method.model)
    loss = registries.losses.get(method.loss)
    trainer = registries.trainers.get(method.trainer)
    config = ExperimentConfig(
        method=method.name,
        model=_instantiate(model.config_cls),
        loss=_instantiate(loss.config_cls),
        trainer=_instantiate(trainer.config_cls),
    )
    if profile:
        if profile not in method.profiles:
            raise UnknownNameError(
                f"profile of method {method.name!r}",
                profile,
                method.profiles,
                hint="Profiles are defined by the method's plugin.",
            )
        config = apply_overrides(config, method.profiles[profile], source=f"profile {profile!r}")
        config.profile = profile
    if config_file is not None:
        file_values = load_toml(config_file)
        if "method" in file_values and file_values.pop("method") != method.name:
            raise ConfigError(f"{config_file}: written for another method (method = ...).")
        config = apply_overrides(config, file_values, source=str(config_file))
    for source, values in layers:
        config = apply_overrides(config, values, source=source)
    if sets:
        config = apply_overrides(config, parse_sets(sets), source="--set")
    if extra:
        config = apply_overrides(config, extra, source="command line")
    if not config.train_dataset:
        config.train_dataset = method.train_dataset
    check_ranges(config)
    for section in (config.model, config.loss, config.trainer):
        check = getattr(section, "check", None)
        if callable(check):
            check(config)
    return config
