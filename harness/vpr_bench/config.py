"""Experiment configuration: TOML files and ``--set key=value`` overrides onto dataclasses.

Configs are plain dataclasses (possibly nested). Overrides use dotted keys (``trainer.lr``);
string values from the command line are converted to the field's declared type; an unknown key
is an error with a "Did you mean" suggestion. The resolved config is stored as a dict in every
record and checkpoint, with :func:`config_hash` as its short identity.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tomllib
import types
import typing
from collections.abc import Mapping, Sequence
from enum import Enum
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

from vpr_bench.errors import ConfigError, did_you_mean

__all__ = [
    "apply_overrides",
    "config_hash",
    "convert_value",
    "flatten",
    "load_toml",
    "parse_sets",
    "to_dict",
]

T = TypeVar("T")


def parse_sets(items: Sequence[str]) -> dict[str, str]:
    """Parse ``["trainer.lr=0.01", "seed=3"]`` into ``{"trainer.lr": "0.01", "seed": "3"}``.

    Raises:
        ConfigError: An item has no ``=`` or an empty key.
    """
    parsed: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(
                f"--set expects key=value (e.g. --set trainer.lr=0.01), got {item!r}."
            )
        parsed[key.strip()] = value.strip()
    return parsed


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested tables to dotted keys: ``{"a": {"b": 1}}`` -> ``{"a.b": 1}``."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, dotted + "."))
        else:
            flat[dotted] = value
    return flat


def load_toml(path: Path) -> dict[str, Any]:
    """Read a TOML experiment file into dotted keys (``[trainer] lr = 0.01`` -> ``trainer.lr``).

    Raises:
        ConfigError: The file is missing, a folder, unreadable, or not valid UTF-8 TOML (the
            message names the file).
    """
    if Path(path).is_dir():
        raise ConfigError(
            f"Config file {path} is a folder; --config takes a TOML file, e.g. exp.toml with "
            "[model], [loss] and [trainer] tables."
        )
    try:
        with Path(path).open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"Config file {path} does not exist. Check the --config path.") from None
    except OSError as exc:
        raise ConfigError(
            f"Config file {path} cannot be read ({exc.strerror or exc}). Check the --config path."
        ) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"Config file {path} is not UTF-8 text ({exc.reason} at byte {exc.start}); --config "
            "takes a TOML file."
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"Config file {path} is not valid TOML: {exc}.") from exc
    return flatten(data)


def to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of a (nested) config dataclass; enums and paths become strings."""
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise TypeError(f"to_dict expects a dataclass instance, got {type(config).__name__}.")
    return {f.name: _jsonable(getattr(config, f.name)) for f in dataclasses.fields(config)}


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_dict(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def config_hash(config: Mapping[str, Any]) -> str:
    """A 16-hex-digit sha256 of the canonical JSON of a resolved config."""
    payload = json.dumps(_jsonable(dict(config)), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def apply_overrides(config: T, overrides: Mapping[str, Any], *, source: str) -> T:
    """Return a copy of ``config`` with dotted-key ``overrides`` applied.

    Args:
        config: A dataclass instance (fields may be nested dataclasses).
        overrides: ``{"trainer.lr": "0.01", ...}``; values may be strings (converted to the
            field's type) or already typed values (checked).
        source: Where the overrides come from, for messages (``"--set"``, a file name, a
            profile name).

    Returns:
        A new dataclass instance; ``config`` is not modified.

    Raises:
        ConfigError: Unknown key (naming the full dotted key, the section's keys and the
            closest ones) or a value of the wrong type.
    """
    return _apply(config, overrides, source, prefix="")


def _apply(config: T, overrides: Mapping[str, Any], source: str, prefix: str) -> T:
    grouped: dict[str, dict[str, Any]] = {}
    direct: dict[str, Any] = {}
    field_map = {f.name: f for f in dataclasses.fields(config)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(type(config))
    for key, value in overrides.items():
        head, _, rest = key.partition(".")
        if head not in field_map:
            raise _unknown_key(prefix + key, head, field_map, source, prefix)
        if rest:
            sub = getattr(config, head)
            if not dataclasses.is_dataclass(sub):
                raise ConfigError(
                    f"{source}: {prefix + key!r} goes inside {prefix + head!r}, but "
                    f"{prefix + head!r} is a plain {type(sub).__name__} value. Write "
                    f"{prefix + head}=<value> instead."
                )
            grouped.setdefault(head, {})[rest] = value
        elif dataclasses.is_dataclass(getattr(config, head)):
            if not isinstance(value, Mapping):
                dotted = prefix + key
                raise ConfigError(
                    f"{source}: {dotted!r} is a table of options, not a value (got {value!r}). "
                    f"Write a [{dotted}] table of name = value lines, or --set {dotted}.NAME=VALUE."
                )
            grouped.setdefault(head, {}).update(flatten(value))
        else:
            direct[head] = _convert(value, hints.get(head, Any), prefix + key, source)
    changes: dict[str, Any] = dict(direct)
    for head, sub_overrides in grouped.items():
        changes[head] = _apply(getattr(config, head), sub_overrides, source, f"{prefix}{head}.")
    try:
        return dataclasses.replace(config, **changes)  # type: ignore[type-var]
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: {exc}") from exc


def _unknown_key(
    dotted: str, head: str, fields: Mapping[str, Any], source: str, prefix: str
) -> ConfigError:
    """The error of an unknown key, e.g. ``--set trainer.lrr: unknown config key. ...``."""
    where = f"{source} {dotted}" if source.startswith("--") else f"{source}: {dotted}"
    message = f"{where}: unknown config key."
    suggestion = did_you_mean(head, fields)
    if suggestion:
        message += f" Did you mean: {suggestion}?"
    section = f"The keys of {prefix[:-1]} are" if prefix else "The top-level keys are"
    message += f" {section}: {', '.join(sorted(fields))}."
    return ConfigError(message)


def convert_value(value: Any, annotation: Any, key: str = "value", source: str = "config") -> Any:
    """Convert ``value`` (often a string from the command line) to ``annotation``.

    Supports bool, int, float, str, Path, Enum, Literal, ``X | None``, ``tuple[X, ...]``,
    ``tuple[X, Y]`` and ``list[X]`` (comma-separated on the command line).

    Raises:
        ConfigError: The value cannot be converted; the message names the key and the type.
    """
    return _convert(value, annotation, key, source)


def _convert(value: Any, annotation: Any, key: str, source: str) -> Any:
    if annotation is Any:
        return value
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin in (Union, types.UnionType):
        is_none = value is None or (
            isinstance(value, str) and value.lower() in ("none", "null", "")
        )
        if is_none and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _convert(value, option, key, source)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[-1] if errors else f"{source}: {key} cannot be None.")
    if origin is Literal:
        for option in args:
            if value == option or (isinstance(value, str) and str(option) == value):
                return option
        raise ConfigError(
            f"{source}: {key} must be one of {', '.join(map(str, args))}, got {value!r}."
        )
    if origin in (tuple, list):
        items = value.split(",") if isinstance(value, str) else list(value)
        if isinstance(value, str) and not value.strip():
            items = []
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(items) != len(args):
                raise ConfigError(
                    f"{source}: {key} needs {len(args)} comma-separated values, got {value!r}."
                )
            return tuple(_convert(v, a, key, source) for v, a in zip(items, args, strict=True))
        item_type = args[0] if args else Any
        converted = [_convert(v, item_type, key, source) for v in items]
        return tuple(converted) if origin is tuple else converted
    if isinstance(annotation, type):
        return _convert_scalar(value, annotation, key, source)
    return value


def _convert_scalar(value: Any, annotation: type, key: str, source: str) -> Any:
    fail = ConfigError(f"{source}: {key} must be {annotation.__name__}, got {value!r}.")
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "1", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("false", "no", "0", "off"):
            return False
        raise fail
    if issubclass(annotation, Enum):
        try:
            return annotation(value)
        except ValueError:
            valid = ", ".join(str(m.value) for m in annotation)
            raise ConfigError(f"{source}: {key} must be one of {valid}, got {value!r}.") from None
    if annotation in (int, float):
        if isinstance(value, bool):
            raise fail
        if isinstance(value, int | float) and not (annotation is int and isinstance(value, float)):
            return annotation(value)
        if isinstance(value, str):
            try:
                return annotation(value)
            except ValueError:
                raise fail from None
        raise fail
    if annotation is str:
        if isinstance(value, str):
            return value
        raise fail
    if annotation is Path:
        return Path(value)
    if isinstance(value, annotation):
        return value
    raise fail
