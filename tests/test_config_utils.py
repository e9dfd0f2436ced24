"""Typed configs: strict dict round trips and a.b=c overrides."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from gan3dkit.utils.config import ConfigError, apply_overrides, from_dict, to_dict


@dataclass
class Inner:
    x: int = 1
    y: tuple[float, float, float] = (0.0, 0.0, 0.2)
    kind: Literal["a", "b"] = "a"
    n: int | None = None


@dataclass
class Outer:
    inner: Inner = field(default_factory=Inner)
    name: str = "q"
    rate: float = 0.5


def test_round_trip_and_overrides():
    cfg = apply_overrides(
        Outer(), ["inner.x=3", "inner.kind=b", "inner.y=[1, 2, 3]", "name=hello", "inner.n=5", "rate=1"]
    )
    assert cfg == Outer(Inner(3, (1.0, 2.0, 3.0), "b", 5), "hello", 1.0)
    assert isinstance(cfg.rate, float) and isinstance(cfg.inner.y, tuple)
    assert from_dict(Outer, to_dict(cfg)) == cfg


@pytest.mark.parametrize(
    "override, message",
    [
        ("inner.x=1.5", "expected an integer"),
        ("inner.z=1", "unknown key 'z'"),
        ("inner.kind=c", "is not one of"),
        ("nope.x=1", "not a config section"),
        ("inner.y=[1, 2]", "expected 3 items"),
        ("rate=true", "expected a number"),
        ("no_equals", "key.path=value"),
    ],
)
def test_bad_overrides_are_rejected(override, message):
    with pytest.raises(ConfigError, match=message):
        apply_overrides(Outer(), [override])


def test_unknown_keys_in_dicts_are_rejected():
    with pytest.raises(ConfigError, match="unknown keys"):
        from_dict(Outer, {"inner": {"x": 1, "typo": 2}})
