"""`evaluate` as one call: metric names + options -> the report, recorded in the run's metrics.jsonl."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..utils.progress import Bars, no_bars
from .context import EvalOptions
from .registry import MetricResult
from .suite import EvalReport, append_jsonl, evaluate


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Set torch's CPU thread count for one command and restore it (CliRunner tests share the process)."""
    import torch

    old = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


@dataclass
class EvaluateRequest:
    """What `gan3dkit evaluate` was asked: the metrics, the data / checkpoint, the options that change numbers, and
    how to run (threads) and record (metrics.jsonl beside the checkpoint, with the command line)."""

    metrics: str
    data: Path
    ckpt: Path | None = None
    options: EvalOptions = field(default_factory=EvalOptions)
    threads: int | None = None
    record: bool = True
    command: str = ""


def run_evaluate(req: EvaluateRequest, progress: Bars = no_bars,
                 on_result: Callable[[MetricResult], None] | None = None) -> tuple[EvalReport, Path | None]:
    """Resolve the device, validate the metric names, evaluate, and append the results to
    `<ckpt folder>/metrics.jsonl` when recording a checkpoint. Returns the report and that file (or None)."""
    from ..utils.device import resolve_device
    from .catalog import parse_metrics

    req.options.device = resolve_device(req.options.device)
    names = parse_metrics(req.metrics)
    with torch_threads(req.threads), progress("evaluate", None) as update:
        report = evaluate(names, req.data, req.ckpt, req.options, on_result=on_result,
                          progress=lambda stage, done, total: update(done, total))
    jsonl = None
    if req.record and req.ckpt is not None:
        jsonl = append_jsonl(Path(req.ckpt).parent / "metrics.jsonl", report, req.command)
    return report, jsonl
