"""The built-in metrics and extractors, listed explicitly: a new metric module is one line in METRIC_MODULES."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from types import ModuleType

from . import defs_geometry, defs_images
from .context import ExtractorFactory
from .registry import GROUPS, MetricSpec

#: Modules that declare metrics (`METRICS`) and fake-sample extractors (`EXTRACTORS`), in listing order.
METRIC_MODULES: tuple[ModuleType, ...] = (defs_images, defs_geometry)


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


@functools.cache
def _builtin() -> tuple[dict[str, MetricSpec], dict[str, ExtractorFactory]]:
    """A cache of `collect(METRIC_MODULES)` (built once; the modules are fixed at import)."""
    return collect(METRIC_MODULES)


def extractors() -> Mapping[str, ExtractorFactory]:
    """The built-in fake-sample extractors by name."""
    return _builtin()[1]


def list_metrics() -> list[str]:
    """Metric names: by group (GROUPS, others last), then in declaration order."""
    metrics = _builtin()[0]
    rank = {g: i for i, g in enumerate(GROUPS)}
    return sorted(metrics, key=lambda n: rank.get(metrics[n].group, len(GROUPS)))


def get_metric(name: str) -> MetricSpec:
    """The spec of `name`; unknown names raise ValueError listing the valid ones."""
    metrics = _builtin()[0]
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
