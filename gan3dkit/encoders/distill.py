"""Distil a frozen tri-plane generator into an encoder on its own renders (LP3D / TriPlaneNet), torchrun-ready."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..train.checkpoint import load_checkpoint, load_tensors, read_header, save_checkpoint
from ..train.distributed import barrier, broadcast_module, gather_rng_states, init_distributed
from ..train.logging import StatsLog
from ..utils.files import atomic_save_png, atomic_write_json, remove_stale_temps_in
from .config import DistillConfig
from .models import CHECKPOINT, Teacher, build_student, load_teacher
from .render import sample_cameras
from .steps import LP3DStep, TriPlaneNetStep

#: Config sections that may change on resume.
RESUMABLE = ("run", "out")


def distill(
    cfg: DistillConfig,
    resume: bool = True,
    on_step: Callable[[int, int], None] | None = None,
    on_tick: Callable[[dict[str, Any]], None] | None = None,
    device: str = "auto",
) -> dict[str, Any]:
    """Train ``cfg.arch`` from the generator ``cfg.generator`` into ``cfg.out``; resumes exactly from its checkpoint.

    Returns {out, steps, checkpoint, stopped, world, stats, lpips, identity, backbone, last}.
    """
    threads = torch.get_num_threads()
    try:
        return _Distiller(cfg, resume, device).run(on_step, on_tick)
    finally:
        torch.set_num_threads(threads)


def _init_architecture(cfg: DistillConfig) -> None:
    """``--init``: the architecture (arch, size, model) of the checkpoint the run starts from."""
    init = read_header(cfg.init_from).get("config", {})
    if init.get("arch") != cfg.arch:
        raise ValueError(f"--init {cfg.init_from} is a {init.get('arch')!r} encoder, not {cfg.arch!r}")
    cfg.size, cfg.model = init["size"], dict(init["model"])


def _init_weights(path: str, student) -> str:
    """Load every student module (not G) that ``path`` holds, strictly; returns the provenance line."""
    tensors, loaded = load_tensors(path), []
    for name, module in student.modules().items():
        sd = {k[len(name) + 1 :]: v for k, v in tensors.items() if k.startswith(name + ".")}
        if name != "G" and sd:
            module.load_state_dict(sd, strict=True)
            loaded.append(name)
    return f"weights of {Path(path).name} ({', '.join(loaded)}); optimisers start afresh"


class _Distiller:
    def __init__(self, cfg: DistillConfig, resume: bool, device: str) -> None:
        cfg.validate()
        self.dist = init_distributed(device)
        dev, self.world = self.dist.device, self.dist.world
        if cfg.optim.batch % self.world:
            raise ValueError(f"batch {cfg.optim.batch} is not divisible by the number of processes {self.world}")
        self.bg = cfg.optim.batch // self.world
        if dev.type == "cpu":
            torch.set_num_threads(cfg.run.cpu_threads or max(1, (os.cpu_count() or 1) // self.world))
        self.run_dir = Path(cfg.out)
        self.ckpt = self.run_dir / CHECKPOINT
        header = read_header(self.ckpt) if resume and self.ckpt.exists() else None
        torch.manual_seed(cfg.run.seed)  # the student's initial weights depend on the seed only
        if cfg.init_from and header is None:
            _init_architecture(cfg)
        self.teacher: Teacher = load_teacher(cfg.generator, dev, cfg.run.nrr)
        self.student = build_student(cfg, self.teacher, dev)  # fills cfg.model, says where weights came from
        if cfg.init_from and header is None:
            self.student.provenance["init"] = _init_weights(cfg.init_from, self.student)
        if header is not None:
            old, new = header["config"], cfg.to_dict()
            diff = sorted(k for k in new if k not in RESUMABLE and old.get(k) != new[k])
            if diff:
                raise ValueError(f"{self.ckpt} was trained with different settings in {diff}; use a new --out")
        self.cfg = cfg
        if self.dist.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            remove_stale_temps_in(self.run_dir, recursive=True)  # checkpoints and samples of a killed run
            atomic_write_json(self.run_dir / "config.json", cfg.to_dict())
        torch.manual_seed(cfg.run.seed * self.world + self.dist.rank)
        np.random.seed((cfg.run.seed * self.world + self.dist.rank) % (1 << 31))
        family = self.student.family
        self.stepper = (LP3DStep if family == "lp3d" else TriPlaneNetStep)(cfg, self.teacher, self.student, dev)
        # Train mode from the first step: R's decoder and SR are copied from the eval-mode teacher, and eval mode
        # fuses modulated convolutions (other rounding), so leaving it to the first validation made a resumed run's
        # first step differ from the uninterrupted one.
        self.student.train()
        for m in self.student.modules().values():
            broadcast_module(m, self.world)
        self.step = 0
        if header is not None:
            load_checkpoint(self.ckpt, self.student.modules(), self.stepper.optimizers, restore_rng=self.dist.is_main)
            self.step = int(header["progress"]["step"])
            if not self.dist.is_main:
                torch.set_rng_state(load_tensors(self.ckpt, "rng_rank")[str(self.dist.rank)])
            for name, la in self.stepper.lookaheads.items():
                la.load(load_tensors(self.ckpt, f"lookahead.{name}"))
        self.val = self._val_set(dev)
        self.stats_log = StatsLog(self.run_dir) if self.dist.is_main else None
        self.sums: dict[str, list[float]] = {}

    def _val_set(self, dev: torch.device) -> dict[str, torch.Tensor]:
        """Held-out latents (seed 10**6 + run seed, never used in training) and augmented input cameras."""
        t, n = self.teacher, self.cfg.run.val_samples
        g = torch.Generator().manual_seed(10**6 + self.cfg.run.seed)
        z = torch.randn(n, t.G.z_dim, generator=g).to(dev)
        cams, pose = sample_cameras(self.cfg.cameras, n, t.cam.radius, t.cam.focal, t.cam.lookat, True, g)
        mv, _ = sample_cameras(self.cfg.cameras, n, t.cam.radius, t.cam.focal, t.cam.lookat, False, g)
        with torch.no_grad(), torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
            torch.manual_seed(10**6 + self.cfg.run.seed)  # backbone noise: never touch the training RNG stream
            ws = t.mapping(z, cams.to(dev), self.cfg.run)
            planes = t.G.synthesize_planes(ws)
            ref = t.G.render_planes(planes, cams.to(dev), ws, neural_rendering_resolution=t.nrr,
                                    deterministic_render=True)
            nov = t.G.render_planes(planes, mv.to(dev), ws, neural_rendering_resolution=t.nrr,
                                    deterministic_render=True)
        return {"cams": cams.to(dev), "pose": pose.to(dev), "mv": mv.to(dev), "image": ref["image"],
                "novel": nov["image"], "planes": planes}  # fmt: skip

    @torch.no_grad()
    def _validate(self) -> dict[str, float]:
        dev = self.dist.device
        with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
            torch.manual_seed(10**6 + self.cfg.run.seed)
            return self._validate_inner()

    def _validate_inner(self) -> dict[str, float]:
        v, s = self.val, self.student
        s.eval()
        out = s.encode(v["image"], v["cams"])
        rec = s.render(out, v["cams"], self.teacher.nrr)["image"]
        nov = s.render(out, v["mv"], self.teacher.nrr)["image"]
        s.train()
        mse = ((rec.clamp(-1, 1) - v["image"]) / 2).square().mean().item()
        mse_n = ((nov.clamp(-1, 1) - v["novel"]) / 2).square().mean().item()
        rec_rec = {
            "val/l1_input": (rec - v["image"]).abs().mean().item(),
            "val/psnr_input": -10 * math.log10(max(mse, 1e-12)),
            "val/psnr_novel": -10 * math.log10(max(mse_n, 1e-12)),
            "val/triplane_l1": (out.planes - v["planes"]).abs().mean().item(),
        }
        if out.pose is not None:
            rec_rec["val/pose_err_deg"] = math.degrees((out.pose - v["pose"]).abs().mean().item())
        self._last_val_images = (v["image"], rec, nov)
        return rec_rec

    def run(self, on_step, on_tick) -> dict[str, Any]:
        cfg = self.cfg
        start = time.time()
        tick_start, tick_step = start, self.step
        record: dict[str, Any] = {}
        while True:
            stopped = self._stop_reason(start)
            if stopped is None:
                stats = self.stepper.step(self.step, self.bg, self.world)
                bad = {k: v for k, v in stats.items() if not math.isfinite(v)}
                if bad:
                    raise FloatingPointError(
                        f"distillation diverged at step {self.step}: {bad}; last good checkpoint: {self.ckpt}"
                    )
                for k, v in stats.items():
                    self.sums.setdefault(k, []).append(v)
                self.step += 1
                if on_step is not None and self.dist.is_main:
                    on_step(self.step, cfg.run.steps)
                if self.step >= cfg.run.steps:
                    stopped = "steps"  # every process reaches it at the same step
                elif self.step % cfg.run.tick_steps:
                    continue
            now = time.time()
            record = {"step": self.step, "kimg": self.step * cfg.optim.batch / 1000,
                      "sec_per_step": (now - tick_start) / max(self.step - tick_step, 1), "total_sec": now - start,
                      "stage": self.stepper.stage(max(self.step - 1, 0)),  # the last step run
                      **{k: float(np.mean(v)) for k, v in self.sums.items()}, **self._validate()}  # fmt: skip
            self.sums.clear()
            tick_start, tick_step = now, self.step
            tick = self.step // cfg.run.tick_steps
            if stopped is not None or tick % cfg.run.snapshot_ticks == 0:
                self._snapshot(record)
            if self.dist.is_main:
                self.stats_log.write(record)
                if on_tick is not None:
                    on_tick(record)
            if stopped is not None:
                return {"out": str(self.run_dir), "steps": self.step, "checkpoint": str(self.ckpt),
                        "stopped": stopped, "world": self.world, "last": record,
                        "stats": "tensorboard + stats.jsonl" if self.stats_log and self.stats_log.tb else
                        "stats.jsonl (tensorboard not installed)", **self.student.provenance}  # fmt: skip

    def _stop_reason(self, start: float) -> str | None:
        run = self.cfg.run
        late = run.max_minutes is not None and time.time() - start >= run.max_minutes * 60
        if self.world > 1:
            flag = torch.tensor([float(late)], device=self.dist.device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            late = bool(flag.item())
        if self.step >= run.steps:
            return "steps"
        return "max_minutes" if late else None

    def _snapshot(self, record: dict[str, Any]) -> None:
        rank_rng = gather_rng_states(self.world)
        if self.dist.is_main:
            extra = {f"rng_rank.{r}": t for r, t in enumerate(rank_rng)}
            for name, la in self.stepper.lookaheads.items():
                extra.update({f"lookahead.{name}.{k}": v for k, v in la.state().items()})
            save_checkpoint(self.ckpt, self.student.modules(), self.stepper.optimizers, self.cfg.to_dict(),
                            {"step": self.step}, extra={"generator_config": self.teacher.train_config,
                                                        "nrr": self.teacher.nrr, **self.student.provenance},
                            extra_tensors=extra)  # fmt: skip
            record["checkpoint"] = str(self.ckpt)
            self._save_samples()
        barrier(self.world)

    def _save_samples(self) -> None:
        from ..utils.visual import make_grid, to_uint8_hwc

        inp, rec, nov = self._last_val_images
        rows = [im for trip in zip(to_uint8_hwc(inp), to_uint8_hwc(rec), to_uint8_hwc(nov), strict=False)
                for im in trip]
        atomic_save_png(self.run_dir / "samples" / f"val{self.step:07d}.png", make_grid(rows, 3))

