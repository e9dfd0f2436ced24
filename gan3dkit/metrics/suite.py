"""`evaluate()`: run registered metrics on a checkpoint and/or dataset, time them, append results to metrics.jsonl."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .catalog import extractors, get_metric
from .context import EvalContext, EvalOptions
from .registry import MetricResult, _clean

#: Metrics that need a generator unless --pred supplies predictions.
_PRED_OK = {"psnr", "ssim", "ms_ssim", "mse", "lpips", "dists", "id"}


@dataclass
class EvalReport:
    """All results of one run plus provenance."""

    results: list[MetricResult]
    ckpt: str | None
    data: str
    data_sha256: str
    options: dict[str, Any]
    shared_s: dict[str, float] = field(default_factory=dict)
    total_s: float = 0.0
    device: str = "cpu"

    def to_dict(self) -> dict[str, Any]:
        return {"ckpt": self.ckpt, "data": self.data, "data_sha256": self.data_sha256, "device": self.device,
                "total_s": round(self.total_s, 3), "shared_s": {k: round(v, 3) for k, v in self.shared_s.items()},
                "options": self.options, "results": [r.to_dict() for r in self.results]}


def device_name(device: str) -> str:
    import platform

    import torch

    if str(device).startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def evaluate(metrics: list[str], data: str | Path, ckpt: str | Path | None = None,
             opts: EvalOptions | None = None, progress: Callable[[str, int, int], None] | None = None,
             on_result: Callable[[MetricResult], None] | None = None) -> EvalReport:
    """Compute `metrics` (registered names) and return an EvalReport.

    Metrics share one streaming pass over the fakes (the largest count any of them needs; only per-sample outputs such
    as features are kept) and cached real features; each result's `time_s` excludes shared work, listed in `shared_s`.
    """
    opts = opts or EvalOptions()
    specs = [get_metric(m) for m in metrics]
    if ckpt is None:
        needs_g = [s.name for s in specs if not (opts.pred and s.name in _PRED_OK)]
        if needs_g:
            raise ValueError(f"metrics {needs_g} need a generator: pass --ckpt (only {sorted(_PRED_OK)} work with "
                             "--pred alone)")
    t_start = time.perf_counter()
    ctx = EvalContext(opts, data, ckpt, progress, extractors())
    needs = [name for s in specs for name in s.needs(opts)]
    ctx.max_fakes = max((opts.num or s.default_num for s in specs if s.needs(opts)), default=0)
    if needs:
        ctx.fake_outputs(needs)  # one streaming pass over the fakes serves every metric
    results: list[MetricResult] = []
    for spec in specs:
        shared_before = sum(ctx.shared_s.values())
        t0 = time.perf_counter()
        out = spec.fn(ctx)
        elapsed = time.perf_counter() - t0 - (sum(ctx.shared_s.values()) - shared_before)
        for r in out if isinstance(out, list) else [out]:
            r.time_s = round(max(elapsed, 0.0), 3)
            results.append(r)
            if on_result is not None:
                on_result(r)
    return EvalReport(results, str(Path(ckpt).resolve()) if ckpt else None, str(Path(data).resolve()),
                      ctx.data_hash(), ctx.options_record(), dict(ctx.shared_s), time.perf_counter() - t_start,
                      device_name(opts.device))


def append_jsonl(path: str | Path, report: EvalReport, command: str = "") -> Path:
    """Append one JSON line per result (with provenance) to `path`; one O_APPEND write + fsync per call."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    base = {"timestamp": stamp, "ckpt": report.ckpt, "data": report.data, "data_sha256": report.data_sha256,
            "device": report.device, "command": command, "options": report.options}
    lines = "".join(json.dumps(_clean({**base, **r.to_dict()}), default=str) + "\n" for r in report.results)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, lines.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    return path

