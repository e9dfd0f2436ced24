"""What a training task gives the engine (networks, optimisers, a step) and what the engine tells it (RunContext)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..utils.errors import RunError
from .distributed import DistInfo


class TrainingDiverged(RunError):
    """A loss or gradient became NaN/inf; the last good checkpoint is kept (a RuntimeError; CLI exit code 1)."""


@dataclass(frozen=True)
class Schedule:
    """When a run ticks, snapshots and stops, counted in optimiser steps (and minutes of wall clock)."""

    batch: int
    """Global batch (all processes): kimg = step * batch / 1000; must divide by the number of processes."""
    stops: tuple[tuple[str, int], ...]
    """(reason, step) pairs: the run stops at the first step reached, reporting its reason (e.g. ('kimg', 5000))."""
    tick_steps: int = 1
    """Steps per tick (counted from the start of each call): one stats record, one progress line."""
    snapshot_ticks: int = 1
    """A checkpoint (and samples) every this many ticks, and always at a stop."""
    max_minutes: float | None = None
    """Stop this call after so many minutes with a resumable checkpoint (stop reason 'max_minutes')."""
    unit: int = 1
    """What the progress bar and `on_step` count: 1 = steps, `batch` = images."""


@dataclass
class RunContext:
    """What a task is told while it builds and steps: its process, its folder, the checkpoint it resumes, the step."""

    dist: DistInfo
    run_dir: Path
    ckpt_path: Path
    header: dict[str, Any] | None
    """The header of the checkpoint being resumed (weights are loaded by the engine after `build`), else None."""
    seed: int
    step: int = 0
    """The step being run (set by the engine)."""
    batch: int = 0

    @classmethod
    def single(cls, out: str | Path, seed: int = 0, device: str = "cpu") -> RunContext:
        """A fresh single-process context: to build a task outside the engine (inspection, tools, tests)."""
        dist = DistInfo(0, 1, 0, torch.device(device))
        return cls(dist, Path(out), Path(out) / "checkpoint.safetensors", None, seed)

    @property
    def device(self) -> torch.device:
        return self.dist.device

    @property
    def resuming(self) -> bool:
        return self.header is not None

    @property
    def batch_gpu(self) -> int:
        """This process's share of the global batch."""
        return self.batch // self.dist.world

    def seed_process(self, seed: int | None = None) -> None:
        """Re-seed torch and numpy for this process (per rank), e.g. after building seed-only initial weights."""
        import numpy as np

        s = self.seed if seed is None else seed
        torch.manual_seed(s * self.dist.world + self.dist.rank)
        np.random.seed((s * self.dist.world + self.dist.rank) % (1 << 31))

    def check_finite(self, stats: dict[str, float], where: str = "", hint: str = "") -> None:
        """Raise TrainingDiverged naming the step, `where` and the non-finite stats (call it before an optimiser
        step so the weights stay good; the engine checks every step's returned stats too)."""
        bad = {k: v for k, v in stats.items() if not math.isfinite(v)}
        if bad:
            kept = self.ckpt_path if self.ckpt_path.exists() else "none written yet"
            raise TrainingDiverged(
                f"training diverged at step {self.step} (kimg {self.step * self.batch / 1000:.3f})"
                f"{', phase ' + where if where else ''}: {bad}. The last good checkpoint is kept: {kept}. "
                f"{hint or 'Lower the learning rates'}, then resume or restart."
            )


class Task:
    """A training task: its networks, optimisers, schedule and one step. Override what the task has; the defaults do
    nothing. The engine owns resume, torchrun, NaN stops, checkpoints, stats, progress, samples and time limits.

    `modules` and `optimizers` are checkpointed under their names (and broadcast from rank 0 under torchrun). A new
    task is a subclass built from a RunContext and handed to the engine::

        class MyTask(Task):
            def __init__(self, cfg, ctx):  # the engine has seeded this process; ctx.resuming says if it resumes
                self.net = Net(cfg).to(ctx.device)
                opt = torch.optim.Adam(self.net.parameters())
                super().__init__(Schedule(cfg.batch, (("steps", cfg.steps),)), {"net": self.net}, {"net": opt})
            def step(self, step): ...  # one optimiser step on this process's share (ctx.batch_gpu)

        run_task(lambda ctx: MyTask(cfg, ctx), EngineSettings(out=cfg.out, seed=cfg.seed))
    """

    def __init__(self, schedule: Schedule, modules: dict[str, torch.nn.Module] | None = None,
                 optimizers: dict[str, torch.optim.Optimizer] | None = None) -> None:
        self.schedule = schedule
        self.modules: dict[str, torch.nn.Module] = modules or {}
        self.optimizers: dict[str, torch.optim.Optimizer] = optimizers or {}

    def config(self) -> dict[str, Any]:
        """The resolved config (config.json and the checkpoint header; compared on resume)."""
        return {}

    def stored_config(self, saved: dict[str, Any]) -> dict[str, Any]:
        """A checkpoint's saved config in today's layout (an older layout migrates), compared with `config()`."""
        return saved

    def step(self, step: int) -> dict[str, float]:
        """One optimisation step (0-based `step`); returns its scalar stats (checked for NaN/inf, averaged per tick)."""
        raise NotImplementedError

    def start(self, step: int) -> None:
        """Called once weights are restored, before the first step: open data iterators at `step`."""

    def restore(self, ckpt: Path, header: dict[str, Any]) -> None:
        """Load task state beyond modules/optimisers/RNG (e.g. from `load_tensors(ckpt, prefix)`)."""

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Extra tensors to checkpoint (names must not clash with module or optimiser names)."""
        return {}

    def progress(self, step: int) -> dict[str, Any]:
        """Extra JSON for the checkpoint's progress (step, tick and nimg are the engine's)."""
        return {}

    def header_extra(self) -> dict[str, Any]:
        """Extra JSON for the checkpoint header (what loaders need beyond the config)."""
        return {}

    def tick_stats(self, step: int) -> dict[str, Any]:
        """Extra values for the tick's record (schedules, validation); must not change the training RNG stream."""
        return {}

    def save_samples(self, run_dir: Path, step: int) -> None:
        """Write sample images at a snapshot (main process; written atomically, without touching the RNG)."""

    def describe(self, record: dict[str, Any]) -> str:
        """The tick's one-line summary for the terminal."""
        losses = "  ".join(f"{k.split('/')[-1]} {v:.3f}" for k, v in record.items() if k.startswith("Loss/"))
        return f"tick {record['tick']:>4}  step {record['step']:>7}  {record['sec_per_step']:.2f} s/step  {losses}"

    def summary(self) -> dict[str, Any]:
        """Extra keys of the run's summary."""
        return {}
