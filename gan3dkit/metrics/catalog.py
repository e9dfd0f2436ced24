"""The metrics and extractors: the built-in modules, listed explicitly, and any `register_metrics` added."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from types import ModuleType

from . import defs_geometry, defs_images
from .context import ExtractorFactory
from .registry import GROUPS, MetricSpec

#: Modules that declare metrics (`METRICS`) and fake-sample extractors (`EXTRACTORS`), in listing order.
METRIC_MODULES: tuple[ModuleType, ...] = (defs_images, defs_geometry)
#: Modules added by `register_metrics` (after the built-ins, in registration order).
_REGISTERED: list[ModuleType] = []


def collect(modules: Sequence[ModuleType]) -> tuple[dict[str, MetricSpec], dict[str, ExtractorFactory]]:
    """(metrics by name, extractor factories by name) of `modules`; a name declared twice is an error."""
    metrics: dict[str, MetricSpec] = {}
    extractors: dict[str, ExtractorFactory] = {}
    for module in modules:
        for spec in module.METRICS:
            if spec.name in metrics:
                raise ValueError(f"metric {spec.name!r} is declared twice ({module.__name__})")
            metrics[spec.name] = spec
        for ext in module.EXTRACTORS:
            if ext.name in extractors:
                raise ValueError(f"extractor {ext.name!r} is declared twice ({module.__name__})")
            extractors[ext.name] = ext.factory
    return metrics, extractors


def metric_modules() -> tuple[ModuleType, ...]:
    """The built-in metric modules, then the registered ones."""
    return (*METRIC_MODULES, *_REGISTERED)


def register_metrics(module: ModuleType) -> ModuleType:
    """Add a module declaring `METRICS` (MetricSpecs) and `EXTRACTORS` (ExtractorSpecs) like `defs_images`; its
    metrics are then listed, validated and evaluated as the built-in ones. A module registered already, a missing
    declaration, or a metric / extractor name already taken is refused (nothing is added)."""
    name = getattr(module, "__name__", repr(module))
    if any(m is module for m in metric_modules()):
        raise ValueError(f"metric module {name} is already registered")
    missing = [attr for attr in ("METRICS", "EXTRACTORS") if not hasattr(module, attr)]
    if missing:
        raise ValueError(f"metric module {name} declares no {' / '.join(missing)}")
    collect((*metric_modules(), module))  # raises on a name taken
    _REGISTERED.append(module)
    _collected.cache_clear()
    return module


def unregister_metrics(module: ModuleType) -> None:
    """Remove a module `register_metrics` added (a no-op for one not registered)."""
    if any(m is module for m in _REGISTERED):
        _REGISTERED[:] = [m for m in _REGISTERED if m is not module]
        _collected.cache_clear()


@functools.cache
def _collected() -> tuple[dict[str, MetricSpec], dict[str, ExtractorFactory]]:
    """A cache of `collect(metric_modules())`, cleared when a module is registered or unregistered."""
    return collect(metric_modules())


def extractors() -> Mapping[str, ExtractorFactory]:
    """The fake-sample extractors by name (built-in and registered)."""
    return _collected()[1]


def list_metrics() -> list[str]:
    """Metric names: by group (GROUPS, others last), then in declaration order."""
    metrics = _collected()[0]
    rank = {g: i for i, g in enumerate(GROUPS)}
    return sorted(metrics, key=lambda n: rank.get(metrics[n].group, len(GROUPS)))


def get_metric(name: str) -> MetricSpec:
    """The spec of `name`; unknown names raise ValueError listing the valid ones."""
    metrics = _collected()[0]
    if name not in metrics:
        raise ValueError(f"unknown metric {name!r}; valid metrics: {', '.join(list_metrics())} (or 'all')")
    return metrics[name]


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
