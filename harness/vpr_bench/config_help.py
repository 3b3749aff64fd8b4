"""The config keys a profile, ``--config`` or ``--set`` may use, read from the dataclasses.

Everything shown comes from the config dataclasses themselves, so it cannot drift from them:
the key and type from :func:`dataclasses.fields`, the default from the field (or the resolved
config), the help from the ``Attributes:`` section of the class's Google docstring (of the
class or the classes it derives from), and a range or a set of choices only where a field
declares one in its metadata::

    lr: float = field(default=1e-3, metadata={"range": (0.0, None), "help": "Learning rate."})
    norm: str = field(default="batch", metadata={"choices": ("batch", "none")})

``metadata["help"]`` overrides the docstring line. Used by ``vpr-bench list KIND --options``.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vpr_bench.registry import Registries
    from vpr_bench.specs import MethodSpec

__all__ = ["OptionHelp", "attribute_help", "describe_config", "method_options"]

NOT_KEYS = ("method", "profile")
"""Fields of the experiment config that name the run rather than configure it."""


@dataclass(frozen=True)
class OptionHelp:
    """One config key as ``--set`` takes it.

    Attributes:
        key: The dotted key (``trainer.lr``).
        type: The declared type, as written in the dataclass.
        default: The value without a profile or override.
        range: ``lo..hi`` or ``a | b | c`` when the field declares one, else ``""``.
        help: The first sentence of the field's description (``""`` when undocumented).
        value: The value under the profile being shown (None: no profile asked for).
    """

    key: str
    type: str
    default: Any
    range: str = ""
    help: str = ""
    value: Any = None


def _docstring_attributes(doc: str) -> dict[str, str]:
    """``{name: description}`` of a Google docstring's ``Attributes:`` section."""
    lines = inspect.cleandoc(doc).splitlines()
    found: dict[str, str] = {}
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "Attributes:")
    except StopIteration:
        return found
    header = len(lines[start]) - len(lines[start].lstrip())
    entry_indent: int | None = None
    current = ""
    for line in lines[start + 1 :]:
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        if indent <= header:
            break
        if entry_indent is None:
            entry_indent = indent
        match = re.match(r"(\w+)(?: \([^)]*\))?:\s*(.*)", line.strip())
        if indent == entry_indent and match:
            current = match.group(1)
            found[current] = match.group(2)
        elif current:
            found[current] += " " + line.strip()
    return found


def _first_sentence(text: str) -> str:
    text = re.sub(r":\w+:`~?([^`]+)`", lambda m: m.group(1).rsplit(".", 1)[-1], text)
    text = text.replace("``", "")
    return re.split(r"(?<=\.)\s+(?=[A-Z])", text.strip(), maxsplit=1)[0]


def attribute_help(cls: type) -> dict[str, str]:
    """One line of help per documented field of ``cls`` (its bases' docstrings included)."""
    found: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass.__doc__ and dataclasses.is_dataclass(klass):
            found.update(_docstring_attributes(klass.__doc__))
    return {name: _first_sentence(text) for name, text in found.items()}


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, str):
        return annotation
    return getattr(annotation, "__name__", repr(annotation))


def _range(field: dataclasses.Field[Any]) -> str:
    from vpr_bench.ranges import declared_range

    if "choices" in field.metadata:
        return " | ".join(str(c) for c in field.metadata["choices"])
    declared = declared_range(field)
    if declared is None:
        return ""
    kinds = {part.strip() for part in str(getattr(field.type, "__name__", field.type)).split("|")}
    return declared.describe(integer=bool(kinds & {"int"}) and not kinds & {"float"})


def _default(field: dataclasses.Field[Any]) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return dataclasses.MISSING


def describe_config(config: Any, prefix: str = "") -> Iterator[OptionHelp]:
    """Every key of a config dataclass (class or instance), nested dataclasses flattened.

    The default of a key is the instance's value when ``config`` is an instance (a resolved
    config), else the field's default.
    """
    cls = config if isinstance(config, type) else type(config)
    helps = attribute_help(cls)
    for field in dataclasses.fields(cls):
        value = _default(field) if isinstance(config, type) else getattr(config, field.name)
        if dataclasses.is_dataclass(value):
            yield from describe_config(value, f"{prefix}{field.name}.")
            continue
        yield OptionHelp(
            key=f"{prefix}{field.name}",
            type=_type_name(field.type),
            default=value,
            range=_range(field),
            help=str(field.metadata.get("help", helps.get(field.name, ""))),
        )


def method_options(
    method: MethodSpec, registries: Registries, profile: str | None = None
) -> list[OptionHelp]:
    """The keys of ``method``'s resolved config, each with its value under ``profile``.

    Top-level keys (``seed``, ``train_dataset``, ...) then ``model.*``, ``loss.*`` and
    ``trainer.*`` of the method's parts; :attr:`OptionHelp.value` is set when ``profile`` is.

    Raises:
        UnknownNameError: Unknown profile or component.
        ConfigError: The profile sets a key the config does not have.
    """
    from vpr_bench.experiment import resolve_experiment

    plain = resolve_experiment(method, registries)
    rows = [row for row in describe_config(plain) if row.key not in NOT_KEYS]
    if profile is None:
        return rows
    profiled = resolve_experiment(method, registries, profile=profile)
    values = {row.key: row.default for row in describe_config(profiled)}
    return [dataclasses.replace(row, value=values[row.key]) for row in rows]
