"""The one training engine: exact resume, torchrun, NaN stop, atomic checkpoints, ticks, stats, samples, time limits."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..utils import backends
from ..utils.device import check_device
from ..utils.files import atomic_write_json, remove_stale_temps_in
from .checkpoint import load_checkpoint, load_tensors, read_header, save_checkpoint
from .distributed import all_equal, barrier, broadcast_module, gather_rng_states, init_distributed
from .logging import StatsLog
from .report import Report
from .task import RunContext, Schedule, Task, TrainingDiverged

CHECKPOINT = "checkpoint.safetensors"
__all__ = ["CHECKPOINT", "EngineSettings", "RunContext", "Schedule", "Task", "TrainingDiverged", "run_task"]


@dataclass
class EngineSettings:
    """How the engine runs a task: where, from which seed, on which device, and what it may print."""

    out: str
    seed: int = 0
    resume: bool = True
    device: str = "auto"
    cpu_threads: int | None = None
    """Intra-op threads on CPU (None: the cores per process, less `workers`); restored on return."""
    workers: int = 0
    policy: backends.BackendPolicy = field(default_factory=backends.BackendPolicy)
    """TF32 / cudnn.benchmark while the run lasts; the caller's flags are restored on return."""
    resumable: tuple[str, ...] = ("run", "out")
    """Config sections that may differ from the checkpoint's when a run is resumed."""
    progress: bool = False
    """A progress bar and the resume notice on stderr (main process)."""
    tick_lines: bool = False
    """One line per tick on stderr (the task's `describe`)."""
    label: str = "training"


def run_task(
    build: Callable[[RunContext], Task],
    settings: EngineSettings,
    on_step: Callable[[int, int], None] | None = None,
    on_tick: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Build the task (`build(ctx)`), restore its checkpoint when resuming, train it until a stop; return a summary.

    Summary: {out, steps, nimg, checkpoint, stopped, world, last, stats, **task.summary()}; `stopped` is the reason
    (a Schedule stop, or 'max_minutes'). Raises TrainingDiverged on NaN/inf (the last good checkpoint is kept). The
    thread count and the backend flags (TF32, cudnn.benchmark) are the caller's again on return, also on error.
    """
    threads = torch.get_num_threads()
    try:
        with backends.scoped(settings.policy):
            return _Engine(build, settings).run(on_step, on_tick)
    finally:
        torch.set_num_threads(threads)


def check_resume(config: dict[str, Any], header: dict[str, Any], path: Path, resumable: tuple[str, ...]) -> None:
    """ValueError naming the config sections that differ from the checkpoint's, other than `resumable`."""
    old = dict(header["config"])
    diff = sorted(k for k in config if k not in resumable and old.get(k) != config[k])
    if diff:
        may = ", ".join(f"{k}.*" if isinstance(config.get(k), dict) else k for k in resumable)
        raise ValueError(f"{path} was written with another config: different settings in {diff}; resume with the "
                         f"same config (only {may} may change) or choose a new --out")


class _Engine:
    """One run of a task: build and restore it in __init__, then `run` steps, ticks and snapshots until a stop."""

    def __init__(self, build: Callable[[RunContext], Task], s: EngineSettings) -> None:
        self.s = s
        self.dist = init_distributed(check_device(s.device))
        self.run_dir = Path(s.out)
        self.ckpt = self.run_dir / CHECKPOINT
        if self.dist.device.type == "cpu":
            cores = (os.cpu_count() or 1) // self.dist.world - s.workers
            torch.set_num_threads(s.cpu_threads or max(1, cores))
        header = read_header(self.ckpt) if s.resume and self.ckpt.exists() else None
        self.ctx = RunContext(self.dist, self.run_dir, self.ckpt, header, s.seed)
        self.ctx.seed_process()
        self.task = task = build(self.ctx)
        sched = task.schedule
        self.ctx.batch = sched.batch
        if sched.batch % self.dist.world:
            raise ValueError(f"batch {sched.batch} is not divisible by the number of processes {self.dist.world}")
        if header is not None:
            saved = {**header, "config": task.stored_config(header["config"])}
            check_resume(task.config(), saved, self.ckpt, s.resumable)
        for module in task.modules.values():
            broadcast_module(module, self.dist.world)
        self.step = self.tick = 0
        if header is not None:
            self._restore()
        self.ctx.step = self.step
        task.start(self.step)
        self.report = Report(s.label, s.progress and self.dist.is_main, s.tick_lines and self.dist.is_main)
        if header is not None:
            self.report.resumed(self.step, self.step * sched.batch, self.tick, self.ckpt)
        # a resumed run drops the records logged after its checkpoint (they are trained again), a fresh one all
        self.stats_log = StatsLog(self.run_dir, keep_until_step=self.step) if self.dist.is_main else None
        self._saved_step = self.step if header is not None else -1  # step of the checkpoint on disk
        self.sums: dict[str, list[float]] = {}
        if self.dist.is_main:  # only once every input is checked: a run refused at setup leaves no run folder
            self.run_dir.mkdir(parents=True, exist_ok=True)
            remove_stale_temps_in(self.run_dir, recursive=True)  # checkpoints and samples of a killed run
            atomic_write_json(self.run_dir / "config.json", task.config())

    def _restore(self) -> None:
        """Weights, optimisers, every process's RNG streams, the step and tick, and the task's own state."""
        header = load_checkpoint(self.ckpt, self.task.modules, self.task.optimizers, restore_rng=self.dist.is_main)
        progress = header["progress"]
        self.step = int(progress["step"])
        self.tick = int(progress.get("tick", self.step // self.task.schedule.tick_steps))
        if not self.dist.is_main:  # each process continues its own torch RNG stream
            torch.set_rng_state(load_tensors(self.ckpt, "rng_rank")[str(self.dist.rank)])
        self.task.restore(self.ckpt, header)

    def run(self, on_step: Callable[[int, int], None] | None, on_tick: Callable[[dict[str, Any]], None] | None) -> dict:
        sched, main = self.task.schedule, self.dist.is_main
        total = min(at for _, at in sched.stops)
        start = tick_time = time.time()
        tick_step, last = self.step, {}
        with self.report.bar(self.step * sched.unit, total * sched.unit) as advance:
            while True:
                stopped = self._stop_reason(start)
                if stopped is None:
                    self.ctx.step = self.step
                    stats = self.task.step(self.step)
                    self.ctx.check_finite(stats)
                    for k, v in stats.items():
                        self.sums.setdefault(k, []).append(v)
                    self.step += 1
                    if main:
                        advance(self.step * sched.unit)
                        if on_step is not None:
                            on_step(self.step * sched.unit, total * sched.unit)
                    if self.step - tick_step < sched.tick_steps:
                        continue
                now = time.time()
                if stopped is not None and self.step == tick_step:  # ended right on a tick: no empty record
                    if self._saved_step != self.step:
                        self._snapshot({})
                else:
                    last = self._tick_record(now - tick_time, self.step - tick_step, now - start)
                    tick_time, tick_step = now, self.step
                    if stopped is not None or self.tick % sched.snapshot_ticks == 0:
                        self._snapshot(last)
                    if main:
                        assert self.stats_log is not None
                        self.stats_log.write(last)
                        self.report.tick(self.task.describe(last))
                        if on_tick is not None:
                            on_tick(last)
                if stopped is not None:
                    return self._summary(stopped, last)

    def _stop_reason(self, start: float) -> str | None:
        """The first schedule stop reached, or 'max_minutes', else None (agreed across processes)."""
        limit = self.task.schedule.max_minutes
        late = limit is not None and time.time() - start >= limit * 60
        if self.dist.world > 1:  # every process must stop at the same step
            flag = torch.tensor([float(late)], device=self.dist.device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            late = bool(flag.item())
        for reason, at in self.task.schedule.stops:
            if self.step >= at:
                return reason
        return "max_minutes" if late else None

    def _tick_record(self, sec: float, steps: int, total_sec: float) -> dict[str, Any]:
        """The tick's record: progress, timing, the mean of each step stat, the task's tick stats; resets the sums."""
        self.tick += 1
        batch = self.task.schedule.batch
        record: dict[str, Any] = {
            "tick": self.tick,
            "kimg": self.step * batch / 1000,
            "step": self.step,
            "sec_per_tick": sec,
            "sec_per_step": sec / max(steps, 1),
            "sec_per_kimg": sec / max(steps * batch / 1000, 1e-9),
            "total_sec": total_sec,
            **self.task.tick_stats(self.step),
            **{k: float(np.mean(v)) for k, v in self.sums.items()},
        }
        self.sums.clear()
        return record

    def _snapshot(self, record: dict[str, Any]) -> None:
        """Samples + an atomic checkpoint (main process; every process contributes its RNG state)."""
        rank_rng = gather_rng_states(self.dist.world)
        task = self.task
        if self.dist.is_main:
            task.save_samples(self.run_dir, self.step)
            progress = {"nimg": self.step * task.schedule.batch, "step": self.step, "tick": self.tick,
                        **task.progress(self.step)}
            tensors = {f"rng_rank.{r}": t for r, t in enumerate(rank_rng)}
            save_checkpoint(self.ckpt, task.modules, task.optimizers, task.config(), progress,
                            extra=task.header_extra(), extra_tensors={**tensors, **task.state_tensors()})
            record["checkpoint"] = str(self.ckpt)
        self._saved_step = self.step
        multi = self.dist.world > 1  # one process is trivially in sync: no copy of every weight for it
        params = [p.detach().flatten() for m in task.modules.values() for p in m.parameters()] if multi else []
        record["replicas_in_sync"] = all_equal(torch.cat(params), self.dist.world) if params else True
        barrier(self.dist.world)

    def _summary(self, stopped: str, last: dict[str, Any]) -> dict[str, Any]:
        tb = self.stats_log is not None and self.stats_log.tb is not None
        return {"out": str(self.run_dir), "steps": self.step, "nimg": self.step * self.task.schedule.batch,
                "checkpoint": str(self.ckpt), "stopped": stopped, "world": self.dist.world, "last": last,
                "stats": "tensorboard + stats.jsonl" if tb else "stats.jsonl (tensorboard not installed)",
                **self.task.summary()}

