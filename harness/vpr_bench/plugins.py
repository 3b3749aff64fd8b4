"""The plugin manager: built-ins first, then entry points, with allow/block lists.

Loading order: hook specs, the built-in modules under :mod:`vpr_bench.builtin`, then entry
points of group ``vpr_bench`` (unless ``VPR_BENCH_DISABLE_PLUGIN_AUTOLOAD=1``). An allow-list
(``--plugins a,b`` or ``VPR_BENCH_PLUGINS``) limits which entry points load, and brings the
entry-point plugins their distributions require (transitively; see :mod:`vpr_bench.plugin_deps`)
for their components only, not their methods; ``-p no:name`` blocks one (a name that matches no
plugin is a warning with a suggestion). An auto-discovered plugin that fails to import is a
warning naming its entry point and distribution (an error with ``strict=True``); one named in
the allow-list (or required by one named there) that fails is an error. One name offered by two
distributions is an error naming both. A blank allow-list (``""``, ``",,"``) means "not set".
"""

from __future__ import annotations

import importlib
import logging
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from vpr_bench import hookspecs
from vpr_bench.errors import PluginConflictError, PluginError, UnknownNameError, did_you_mean
from vpr_bench.plugin_deps import plugin_dependencies
from vpr_bench.registry import Registries
from vpr_bench.runtime import RunEvent

__all__ = [
    "BUILTIN_MODULES",
    "PluginInfo",
    "PluginLoadWarning",
    "PluginManager",
    "parse_plugin_list",
]

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "vpr_bench"
ENV_ALLOW = "VPR_BENCH_PLUGINS"
ENV_NO_AUTOLOAD = "VPR_BENCH_DISABLE_PLUGIN_AUTOLOAD"

BUILTIN_MODULES: tuple[str, ...] = (
    "vpr_bench.builtin.models",
    "vpr_bench.builtin.losses",
    "vpr_bench.builtin.datasets",
    "vpr_bench.builtin.evaluators",
    "vpr_bench.builtin.trainers",
    "vpr_bench.builtin.observers",
    "vpr_bench.builtin.train_losses",
    "vpr_bench.builtin.methods",
)


class PluginLoadWarning(UserWarning):
    """A plugin was skipped because it failed to import."""


@dataclass
class PluginInfo:
    """A loaded plugin and what it provides.

    Attributes:
        name: The plugin name (entry-point name, or ``builtin.<module>``).
        distribution: The distribution that ships it.
        version: That distribution's version.
        module: The import path of the plugin module.
        builtin: True for vpr-bench's own internal plugins.
        provides: ``{"models": ["tiny-gem"], ...}``, filled when the registries are built.
        dependency_of: The allowed plugin whose distribution requires this one's, when it was
            loaded only for that reason (its components register, its methods do not).
    """

    name: str
    distribution: str
    version: str
    module: str
    builtin: bool = False
    provides: dict[str, list[str]] = field(default_factory=dict)
    dependency_of: str | None = None


def parse_plugin_list(text: str | None) -> list[str] | None:
    """Parse ``"a,b"`` into ``["a", "b"]``; None, blank or only commas: "no allow-list"."""
    names = [name.strip() for name in (text or "").split(",") if name.strip()]
    return names or None  # "", "  " and ",,," all mean "not set", never "load nothing"


def _version() -> str:
    try:
        return metadata.version("vpr-bench")
    except metadata.PackageNotFoundError:
        return "0+unknown"


class PluginManager:
    """Loads plugins and builds the component registries.

    Args:
        allow: Entry-point names to load (None: ``VPR_BENCH_PLUGINS`` or all).
        block: Plugin names not to load (``-p no:name``).
        autoload: Load entry points not named in ``allow`` (None: honour
            ``VPR_BENCH_DISABLE_PLUGIN_AUTOLOAD``).
        strict: Turn plugin import failures into errors.
        entry_points: Entry points to consider instead of the installed ones (tests).
        builtins: Built-in modules to load (tests may pass fewer).
        extra: Plugin objects registered after the built-ins (the conformance kit uses this).
    """

    def __init__(
        self,
        allow: Sequence[str] | None = None,
        block: Sequence[str] = (),
        autoload: bool | None = None,
        strict: bool = False,
        entry_points: Iterable[metadata.EntryPoint] | None = None,
        builtins: Sequence[str] = BUILTIN_MODULES,
        extra: Sequence[tuple[str, object]] = (),
    ) -> None:
        if allow is None:
            allow = parse_plugin_list(os.environ.get(ENV_ALLOW))
        if autoload is None:
            autoload = os.environ.get(ENV_NO_AUTOLOAD, "") in ("", "0", "false", "no")
        self.allow = list(allow) if allow is not None else None
        self.block = {name.strip() for name in block}
        self.autoload = autoload
        self.strict = strict
        self.plugins: list[PluginInfo] = []
        self.load_warnings: list[str] = []
        self._pm = pluggy.PluginManager(hookspecs.PROJECT)
        self._pm.add_hookspecs(hookspecs)
        self._registries: Registries | None = None
        self._builtins = tuple(builtins)
        for module_name in builtins:
            self._load_builtin(module_name)
        for name, plugin in extra:
            self._register(plugin, PluginInfo(name, "(test)", "0", _module_name(plugin)))
        self._load_entry_points(entry_points)

    @property
    def hook(self) -> Any:
        """The pluggy hook relay (``manager.hook.vpr_bench_models()``)."""
        return self._pm.hook

    def _load_builtin(self, module_name: str) -> None:
        name = "builtin." + module_name.rsplit(".", 1)[-1]
        if name in self.block:
            return
        module = importlib.import_module(module_name)
        self._register(module, PluginInfo(name, "vpr-bench", _version(), module_name, builtin=True))

    def _register(self, plugin: object, info: PluginInfo) -> None:
        """Register ``plugin`` under ``info.name``.

        Raises:
            PluginConflictError: The module is already registered under another name (two
                entry points pointing at one module).
            PluginError: The module's hooks do not match the hook specs.
        """
        taken = self._pm.get_name(plugin)
        if taken is not None:
            first = next((p for p in self.plugins if p.name == taken), None)
            where = f"distribution {info.distribution}"
            if first is not None and first.distribution != info.distribution:
                where = f"distributions {first.distribution} and {info.distribution}"
            raise PluginConflictError(
                f"Entry points {taken!r} and {info.name!r} ({where}) both point at module "
                f"{info.module}; a module is loaded once. Remove one of them from the "
                "[project.entry-points.vpr_bench] table of its pyproject.toml and reinstall, "
                f"or skip one with -p no:{info.name}."
            )
        try:
            self._pm.register(plugin, name=info.name)
            self._pm.check_pending()
        except pluggy.PluginValidationError as exc:
            if self._pm.is_registered(plugin):
                self._pm.unregister(plugin)
            raise PluginError(
                f"Plugin {info.name!r} (distribution {info.distribution}) does not match the hook "
                f"specs: {exc}. Hook names must be one of: "
                f"{', '.join(sorted(hookspecs.hook_names()))}."
            ) from exc
        self.plugins.append(info)

    def _discover(
        self, entry_points: Iterable[metadata.EntryPoint] | None
    ) -> dict[str, metadata.EntryPoint]:
        found = (
            list(entry_points)
            if entry_points is not None
            else list(metadata.entry_points(group=ENTRY_POINT_GROUP))
        )
        by_name: dict[str, metadata.EntryPoint] = {}
        for ep in found:
            previous = by_name.get(ep.name)
            if previous is not None and _dist_name(previous) != _dist_name(ep):
                raise PluginConflictError(
                    f"Plugin name {ep.name!r} is offered by two distributions: "
                    f"{_dist_name(previous)} ({previous.value}) and {_dist_name(ep)} ({ep.value}). "
                    "Uninstall one of them (pip uninstall <distribution>)."
                )
            by_name[ep.name] = ep
        return by_name

    def _load_entry_points(self, entry_points: Iterable[metadata.EntryPoint] | None) -> None:
        available = self._discover(entry_points)
        needed: dict[str, str] = {}
        if self.allow is not None:
            needed = plugin_dependencies(self.allow, available)
            builtin_names = {info.name for info in self.plugins}
            for name in self.allow:
                if name not in available and name not in builtin_names:
                    raise UnknownNameError(
                        "plugin",
                        name,
                        list(available) + sorted(builtin_names),
                        hint="See: vpr-bench plugins (is its package installed?).",
                    )
        self._warn_unknown_blocks(available)
        for name, ep in sorted(available.items()):
            if name in self.block:
                continue
            dependency_of = needed.get(name)
            if self.allow is not None and name not in self.allow and dependency_of is None:
                continue
            if self.allow is None and not self.autoload:
                continue
            dist = _dist_name(ep)
            try:
                module = ep.load()
            except Exception as exc:
                message = (
                    f"Plugin {name!r} (entry point {ep.value!r} of distribution {dist}) failed to "
                    f"import and was skipped: {type(exc).__name__}: {exc}"
                )
                named = self.allow is not None and (name in self.allow or dependency_of)
                if named:
                    raise PluginError(
                        message.replace(" and was skipped", "")
                        + (
                            f" (it was named in --plugins/{ENV_ALLOW}, so this is an error; "
                            "fix or reinstall it, or drop it from the list)"
                            if dependency_of is None
                            else f" (needed by {dependency_of}, named in --plugins/{ENV_ALLOW})"
                        )
                    ) from exc
                if self.strict:
                    raise PluginError(message + " (--strict-plugins makes this an error)") from exc
                self.load_warnings.append(message)
                warnings.warn(message, PluginLoadWarning, stacklevel=2)
                continue
            info = PluginInfo(name, dist, _dist_version(ep), ep.value, dependency_of=dependency_of)
            if dependency_of is not None:
                log.info("plugin %s loaded as a dependency of %s", name, dependency_of)
            self._register(module, info)

    def _warn_unknown_blocks(self, available: Mapping[str, metadata.EntryPoint]) -> None:
        """Warn (with a suggestion) about ``-p no:NAME`` naming no installed plugin."""
        known = set(available) | {"builtin." + m.rsplit(".", 1)[-1] for m in self._builtins}
        for name in sorted(self.block - known):
            suggestion = did_you_mean(name, known)
            message = f"-p no:{name} blocks nothing: no plugin is named {name!r}." + (
                f" Did you mean: no:{suggestion}?" if suggestion else " See: vpr-bench plugins."
            )
            self.load_warnings.append(message)
            warnings.warn(message, PluginLoadWarning, stacklevel=3)

    def registries(self) -> Registries:
        """Build (once) and return the registries of every loaded plugin's components.

        Raises:
            PluginError: A registration hook yielded something that is not its spec type.
            PluginConflictError: Two plugins register the same component name.
        """
        if self._registries is not None:
            return self._registries
        registries = Registries()
        infos = {info.name: info for info in self.plugins}
        for hook_name, kind in hookspecs.REGISTRATION_HOOKS.items():
            expected = hookspecs.spec_type(hook_name)
            for impl in getattr(self._pm.hook, hook_name).get_hookimpls():
                info = infos[impl.plugin_name]
                if kind == "methods" and info.dependency_of is not None:
                    continue  # loaded for its components; its methods were not asked for
                try:
                    produced = list(impl.function() or ())
                except Exception as exc:
                    raise PluginError(
                        f"Plugin {info.name!r} ({info.distribution}) raised in {hook_name}: "
                        f"{type(exc).__name__}: {exc}"
                    ) from exc
                for spec in produced:  # each is a spec dataclass with a name
                    if not isinstance(spec, expected):
                        raise PluginError(
                            f"Plugin {info.name!r} ({info.distribution}): {hook_name} yielded a "
                            f"{type(spec).__name__}; expected {expected.__name__}."
                        )
                    name = str(getattr(spec, "name", ""))
                    registries.by_kind(kind).add(name, spec, info.name, info.distribution)
                    info.provides.setdefault(kind, []).append(name)
        registries.protocols()  # detect conflicting protocol declarations early
        self._registries = registries
        return registries

    def emit(self, event: RunEvent) -> None:
        """Send ``event`` to every observer; an observer that raises is logged and ignored."""
        for impl in self._pm.hook.vpr_bench_run_event.get_hookimpls():
            try:
                impl.function(event=event)
            except Exception:
                log.exception("Run-event observer %s failed on %s", impl.plugin_name, event.kind)

    def fetch(self, uri: str, dest: Path) -> Path | None:
        """Ask the fetch plugins to download ``uri`` to ``dest``."""
        result: Path | None = self._pm.hook.vpr_bench_fetch(uri=uri, dest=dest)
        return result


def _dist_name(ep: metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return str(dist.name) if dist is not None else "(unknown distribution)"


def _dist_version(ep: metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return str(dist.version) if dist is not None else "?"


def _module_name(plugin: object) -> str:
    if isinstance(plugin, ModuleType):
        return plugin.__name__
    return f"{type(plugin).__module__}.{type(plugin).__qualname__}"
