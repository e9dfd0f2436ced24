"""Evaluation suite: metric registry, FID/KID/PR, reconstruction, identity and geometry metrics, probes."""

from .catalog import get_metric, list_metrics, parse_metrics, register_metrics, unregister_metrics
from .context import EvalContext, EvalOptions
from .registry import MetricResult, MetricSpec, metric
from .suite import EvalReport, append_jsonl, evaluate

__all__ = ["EvalContext", "EvalOptions", "EvalReport", "MetricResult", "MetricSpec", "append_jsonl", "evaluate",
           "get_metric", "list_metrics", "metric", "parse_metrics", "register_metrics", "unregister_metrics"]
