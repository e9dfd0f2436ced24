"""Metric specs and typed results (StyleGAN `metric_main` shape); `catalog` lists the metrics."""

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
    """Fake-sample extractors (declared in a module's EXTRACTORS) the metric reads, given the options; the suite
    computes all of a run's extractors in one streaming pass over the fakes."""


def metric(name: str, group: str, default_num: int, description: str,
           needs: tuple[str, ...] | Callable[[Any], tuple[str, ...]] = ()) -> Callable[[MetricFn], MetricSpec]:
    """Decorator: `fn(ctx) -> MetricResult | list[MetricResult]` becomes the MetricSpec `name` (no import side
    effect: a metric module lists its specs in `METRICS`; `catalog.METRIC_MODULES` lists the built-in modules and
    `catalog.register_metrics(module)` adds another).

    `needs` names the fake-sample extractors the metric reads (or a function of the EvalOptions returning them).
    """

    def wrap(fn: MetricFn) -> MetricSpec:
        needs_fn = needs if callable(needs) else (lambda opts, _n=tuple(needs): _n)
        return MetricSpec(name, fn, group, default_num, description, needs_fn)

    return wrap


#: Listing order of the groups (then registration order within a group).
GROUPS = ("fid", "reconstruction", "identity", "geometry")
