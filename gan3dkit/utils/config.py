"""Typed dataclass configs: strict dict/JSON round trips and `a.b=c` overrides with type checking."""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from typing import Any, TypeVar

from .errors import UsageError

T = TypeVar("T")


class ConfigError(UsageError):
    """A config dict or override that does not fit the dataclass (a usage error: exit 2)."""


def to_dict(cfg: Any) -> dict[str, Any]:
    """Dataclass -> plain JSON-able dict (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def from_dict(cls: type[T], data: dict[str, Any], path: str = "") -> T:
    """Build dataclass `cls` from a dict; unknown keys and wrongly typed values raise ConfigError with their path."""
    if not isinstance(data, dict):
        raise ConfigError(f"{path or cls.__name__}: expected an object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(typing.cast(Any, cls)) if f.init}
    unknown = set(data) - set(fields)
    if unknown:
        raise ConfigError(f"{path or cls.__name__}: unknown keys {sorted(unknown)}; valid: {sorted(fields)}")
    kwargs = {name: _coerce(hints[name], value, f"{path}{name}") for name, value in data.items()}
    return cls(**kwargs)


def _coerce(tp: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return from_dict(typing.cast(Any, tp), value, path + ".")
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(arg, value, path)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(f"{path}: {value!r} fits none of {tp}: {'; '.join(errors)}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{path}: {value!r} is not one of {list(args)}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(f"{path}: expected {len(args)} items, got {len(value)}")
            return tuple(_coerce(a, v, path) for a, v in zip(args, value, strict=False))
        item = args[0] if args else Any
        seq = [_coerce(item, v, path) for v in value]
        return tuple(seq) if origin is tuple else seq
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected an object, got {value!r}")
        return dict(value)
    if tp is Any:
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        if not math.isfinite(value):  # NaN/inf from JSON ('NaN', 'Infinity', 1e999) never make a valid setting
            raise ConfigError(f"{path}: expected a finite number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, float) and value.is_integer())):
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
        return int(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true/false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{path}: unsupported config type {tp}")


def apply_overrides(cfg: T, overrides: list[str]) -> T:
    """Return a copy of `cfg` with `a.b=c` overrides applied; values parse as JSON, else as plain strings.

    A config class may define its own JSON layout (`to_dict` / `from_dict`) and short override paths
    (`resolve_key`: e.g. a TrainConfig's `pose.prior` is `method.pose.prior`); both are used when present.
    Example: apply_overrides(cfg, ["optim.batch=8", "model.generator.rendering.plane_axes=xy_xz_yz"]).
    """
    own_layout = hasattr(cfg, "to_dict") and hasattr(type(cfg), "from_dict")
    data = typing.cast(Any, cfg).to_dict() if own_layout else to_dict(cfg)
    resolve = getattr(cfg, "resolve_key", None)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key.path=value")
        key, raw = item.split("=", 1)
        key = key.strip() if resolve is None else resolve(key.strip())
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        node = data
        parts = key.split(".")
        for p in parts[:-1]:
            if not isinstance(node.get(p), dict):
                raise ConfigError(f"override {key!r}: {p!r} is not a config section")
            node = node[p]
        if parts[-1] not in node:
            raise ConfigError(f"override {key!r}: unknown key {parts[-1]!r}; valid: {sorted(node)}")
        node[parts[-1]] = value
    return typing.cast(Any, type(cfg)).from_dict(data) if own_layout else from_dict(type(cfg), data)


def check_ranges(cfg: Any, rules: dict[str, dict[str, Any]]) -> None:
    """Check dotted config fields against `check_number` rules, e.g. {"run.snapshot_ticks": {"ge": 1}}.

    The one place numeric settings are range-checked: a broken value is a UsageError naming the field
    (`--set run.snapshot_ticks`), its value and the allowed range.
    """
    from .errors import check_number

    for key, rule in rules.items():
        node = cfg
        for part in key.split("."):
            node = getattr(node, part)
        if isinstance(node, (tuple, list)):
            for i, item in enumerate(node):
                check_number(f"{key}[{i}] (--set {key}=...)", item, **rule)
        else:
            check_number(f"{key} (--set {key}=...)", node, **rule)
