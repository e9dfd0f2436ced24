"""Metric registry (StyleGAN `metric_main` shape): `register_metric`, `list_metrics`, typed results."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .context import EvalContext


@dataclass
class MetricResult:
    """One number with everything needed to compare it: sample count, network, protocol and time."""

    metric: str
    """Result name (a registered metric, or `<metric>_<part>` for multi-part metrics such as pr_precision)."""
    value: float
    """The number (NaN when it could not be computed; `extras` says why)."""
    num_samples: int
    """Generated (or predicted) samples that entered the number."""
    feature_network: str
    """The network that embedded or estimated (e.g. inception-2015-12-05, dlib-resnet-v1, probe:pose@...)."""
    protocol: str
    """One line stating how the number was made (poses, ranges, resolutions, units)."""
    higher_is_better: bool = False
    time_s: float = 0.0
    """Wall-clock seconds of the metric, excluding work shared with metrics computed before it."""
    extras: dict[str, Any] = field(default_factory=dict)
    """Secondary numbers: std, real sample count, face-detection failures, the estimator's own accuracy, ..."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; non-finite floats become None (strict JSON has no NaN)."""
        return _clean(asdict(self))


def _clean(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "ndim", 1) == 0:
        return _clean(obj.item())
    return obj


MetricFn = Callable[["EvalContext"], "MetricResult | list[MetricResult]"]


@dataclass(frozen=True)
class MetricSpec:
    """A registered metric: its function, group, default sample count and one-line description."""

    name: str
    fn: MetricFn
    group: str
    """fid | reconstruction | identity | geometry."""
    default_num: int
    """Paper-protocol sample count used when `--num` is not given (e.g. 50000 for fid50k_full, 256 for nfs256)."""
    description: str
    needs: Callable[[Any], tuple[str, ...]] = lambda opts: ()
    """Fake-sample extractors (context.EXTRACTORS) the metric reads, given the options; the suite computes all of a
    run's extractors in one streaming pass over the fakes."""


_REGISTRY: dict[str, MetricSpec] = {}


def register_metric(name: str, group: str, default_num: int, description: str,
                    needs: tuple[str, ...] | Callable[[Any], tuple[str, ...]] = ()) -> Callable[[MetricFn], MetricFn]:
    """Decorator: register `fn(ctx) -> MetricResult | list[MetricResult]` under `name` (duplicates are an error).

    `needs` names the fake-sample extractors the metric reads (or a function of the EvalOptions returning them).
    """

    def wrap(fn: MetricFn) -> MetricFn:
        if name in _REGISTRY:
            raise ValueError(f"metric {name!r} is already registered")
        needs_fn = needs if callable(needs) else (lambda opts, _n=tuple(needs): _n)
        _REGISTRY[name] = MetricSpec(name, fn, group, default_num, description, needs_fn)
        return fn

    return wrap


def _ensure_loaded() -> None:
    from . import suite  # noqa: F401  (registers the built-in metrics)


#: Listing order of the groups (then registration order within a group).
GROUPS = ("fid", "reconstruction", "identity", "geometry")


def list_metrics() -> list[str]:
    """Registered metric names: by group (GROUPS, others last), then in registration order."""
    _ensure_loaded()
    rank = {g: i for i, g in enumerate(GROUPS)}
    return sorted(_REGISTRY, key=lambda n: rank.get(_REGISTRY[n].group, len(GROUPS)))


def get_metric(name: str) -> MetricSpec:
    """The spec of `name`; unknown names raise ValueError listing the valid ones."""
    _ensure_loaded()
    if name not in _REGISTRY:
        raise ValueError(f"unknown metric {name!r}; valid metrics: {', '.join(list_metrics())} (or 'all')")
    return _REGISTRY[name]


def parse_metrics(text: str) -> list[str]:
    """Comma-separated names (or `all`) -> validated, de-duplicated list."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ValueError("no metrics given; e.g. --metrics fid,kid,pr")
    if names == ["all"]:
        return list_metrics()
    out: list[str] = []
    for n in names:
        get_metric(n)
        if n not in out:
            out.append(n)
    return out
