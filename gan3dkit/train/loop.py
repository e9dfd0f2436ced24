"""The generic GAN training loop: phases with lazy regularisation, EMA, ticks, snapshots, exact resume, NaN stop."""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..cameras import LABEL_DIM
from ..data.reader import LMDBDataset
from ..data.validate import check_dataset_cameras
from ..methods.registry import BuildContext, MethodRuntime, MethodSpec, pose_free_methods
from ..methods.schedule import ema_beta, lazy_reg_adjust
from ..utils import backends
from ..utils.device import check_device
from ..utils.errors import RunError
from ..utils.files import atomic_save_png, atomic_write_json, remove_stale_temps_in
from ..utils.visual import make_grid
from .checkpoint import load_checkpoint, load_tensors, read_header, save_checkpoint
from .config import TrainConfig
from .distributed import (
    DistInfo,
    all_equal,
    barrier,
    broadcast_module,
    gather_rng_states,
    init_distributed,
    sync_gradients,
)
from .logging import StatsLog, render_grid, save_grids
from .sampler import PositionSampler

CHECKPOINT = "checkpoint.safetensors"
#: Config sections that may change when a run is resumed (run length and logging only).
RESUMABLE_CHANGES = ("run", "data", "out")


class TrainingDiverged(RunError):
    """A loss or gradient became NaN/inf; the last good checkpoint is kept (a RuntimeError; CLI exit code 1)."""


@dataclass
class Phase:
    name: str  # Gmain, Greg, Dmain, Dreg
    module: str  # "G" or "D"
    opt: torch.optim.Optimizer
    interval: int


def train(
    cfg: TrainConfig,
    resume: bool = True,
    on_tick: Callable[[dict[str, Any]], None] | None = None,
    on_step: Callable[[int, int], None] | None = None,
    device: str = "auto",
) -> dict[str, Any]:
    """Train `cfg`'s method on `cfg.data` into `cfg.out`; resumes exactly from `<out>/checkpoint.safetensors`.

    Returns a summary {out, nimg, steps, checkpoint, stopped, world}. Raises TrainingDiverged on NaN/inf.
    The intra-op thread count set for CPU training (`run.cpu_threads`) and the TF32 / cudnn.benchmark flags set for
    the run (`utils.backends`) are restored on return.
    """
    threads = torch.get_num_threads()
    try:
        with backends.scoped(backends.BackendPolicy(allow_tf32=cfg.run.allow_tf32)):
            return _Trainer(cfg, resume, device).run(on_tick, on_step)
    finally:
        torch.set_num_threads(threads)


def _check_finite(stats: dict[str, float], step: int, nimg: int, phase: str, ckpt: Path) -> None:
    bad = {k: v for k, v in stats.items() if not math.isfinite(v)}
    if bad:
        raise TrainingDiverged(
            f"training diverged at step {step} (kimg {nimg / 1000:.3f}), phase {phase}: {bad}. "
            f"The last good checkpoint is kept: {ckpt if ckpt.exists() else 'none written yet'}. "
            "Lower the learning rates or raise loss.r1_gamma, then resume or restart."
        )


def _check_resume(cfg: TrainConfig, header: dict[str, Any], path: Path) -> None:
    old, new = TrainConfig.from_dict(header["config"]).to_dict(), cfg.to_dict()  # an older layout migrates
    diff = sorted(k for k in new if k not in RESUMABLE_CHANGES and old.get(k) != new[k])
    if diff:
        raise ValueError(
            f"{path} was trained with different settings in {diff}; resume with the same config "
            "(only run.* may change) or choose a new --out"
        )


def _check_camera_source(spec: MethodSpec, dataset: LMDBDataset, path: str) -> None:
    """A method that reads camera labels refuses a dataset whose cameras were sampled from a prior."""
    if spec.needs_labels and dataset.camera_source == "prior":
        raise ValueError(
            f"{path}: its cameras were sampled from a pose prior, not measured, so --method {spec.name} would "
            f"learn nothing about pose; train it with a pose-free method ({', '.join(pose_free_methods())})"
        )


def _build_runtime(
    cfg: TrainConfig, cams: torch.Tensor | None, dataset_prior: dict | None, dev: torch.device
) -> MethodRuntime:
    """The method's G, D and loss; without mixed precision EG3D's fp16 blocks (SR, D top resolutions) are fp32."""
    gen_cfg, disc_cfg = cfg.generator, cfg.discriminator
    if not cfg.run.mixed_precision:
        gen_cfg = dataclasses.replace(
            gen_cfg, num_fp16_res=0, superres=dataclasses.replace(gen_cfg.superres, num_fp16_res=0)
        )
        disc_cfg = dataclasses.replace(disc_cfg, num_fp16_res=0)
    ctx = BuildContext(gen_cfg, disc_cfg, cfg.loss, cfg.method, cfg.optim.batch, cams, dataset_prior, dev)
    return cfg.spec.build(ctx)


def _make_phases(cfg: TrainConfig, G: torch.nn.Module, D: torch.nn.Module) -> list[Phase]:
    """Gmain, Greg, Dmain, Dreg; one Adam per network with lr/betas adjusted for lazy regularisation."""
    phases: list[Phase] = []
    for name, module, lr, interval in (
        ("G", G, cfg.optim.glr, cfg.optim.g_reg_interval),
        ("D", D, cfg.optim.dlr, cfg.optim.d_reg_interval),
    ):
        mlr, betas = lazy_reg_adjust(lr, tuple(cfg.optim.betas), interval)
        opt = torch.optim.Adam(module.parameters(), lr=mlr, betas=betas, eps=cfg.optim.eps)
        phases += [Phase(f"{name}main", name, opt, 1), Phase(f"{name}reg", name, opt, interval)]
    return phases


class _Trainer:
    """One training run: set up (and restore) everything in __init__, then `run` steps and ticks until done."""

    def __init__(self, cfg: TrainConfig, resume: bool, device: str) -> None:
        cfg.validate()
        self.cfg = cfg
        self.dist: DistInfo = init_distributed(check_device(device))
        dist_info = self.dist
        dev, self.world = dist_info.device, dist_info.world
        if cfg.optim.batch % self.world:
            raise ValueError(f"batch {cfg.optim.batch} is not divisible by the number of processes {self.world}")
        self.batch_gpu = cfg.optim.batch // self.world
        self.run_dir = Path(cfg.out)
        self.ckpt_path = self.run_dir / CHECKPOINT
        if dev.type == "cpu":
            workers = cfg.run.workers
            torch.set_num_threads(cfg.run.cpu_threads or max(1, (os.cpu_count() or 1) // self.world - workers))
        header = read_header(self.ckpt_path) if resume and self.ckpt_path.exists() else None
        if header is not None:
            _check_resume(cfg, header, self.ckpt_path)
        torch.manual_seed(cfg.run.seed * self.world + dist_info.rank)
        np.random.seed((cfg.run.seed * self.world + dist_info.rank) % (1 << 31))

        spec = cfg.spec
        # pose-free methods never read the labels: the camera field is not even loaded
        self.dataset = LMDBDataset(cfg.data, fields=["image", "camera"] if spec.needs_labels else ["image"],
                                   xflip=cfg.run.xflip)
        _check_camera_source(spec, self.dataset, cfg.data)
        if self.dataset.resolution != cfg.generator.img_resolution:
            raise ValueError(
                f"dataset resolution {self.dataset.resolution} != generator img_resolution "
                f"{cfg.generator.img_resolution}; pick a matching preset or --set generator.img_resolution"
            )
        cams = self.dataset.cameras() if spec.needs_labels else None
        if cams is not None:  # refuse NaN/invalid labels now, naming the samples, instead of diverging later
            check_dataset_cameras(cams.numpy(), cfg.data)
        if cams is not None and cfg.run.xflip:
            from ..cameras.camera import Cameras

            cams = torch.cat([cams, Cameras.from_label(cams).mirror().to_label()])
        self.runtime = _build_runtime(cfg, cams, self.dataset.meta.get("pose_prior"), dev)
        self.G, self.D, self.loss = self.runtime.G, self.runtime.D, self.runtime.loss
        broadcast_module(self.G, self.world)
        broadcast_module(self.D, self.world)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.phases = _make_phases(cfg, self.G, self.D)
        self.optimizers = {"G": self.phases[0].opt, "D": self.phases[2].opt}
        self.nimg = self.step = self.tick = 0
        if header is None and cfg.run.init:  # a fine-tune: the weights of another run, fresh optimisers and kimg
            load_checkpoint(cfg.run.init, {"G": self.G, "D": self.D, "G_ema": self.G_ema}, None, restore_rng=False)
        if header is not None:
            modules = {"G": self.G, "D": self.D, "G_ema": self.G_ema}
            header = load_checkpoint(self.ckpt_path, modules, self.optimizers, restore_rng=dist_info.is_main)
            self.nimg, self.step, self.tick = (int(header["progress"][k]) for k in ("nimg", "step", "tick"))
            if not dist_info.is_main:  # each process continues its own torch RNG stream
                torch.set_rng_state(load_tensors(self.ckpt_path, "rng_rank")[str(dist_info.rank)])
        self.data_iter = iter(self._loader(dev))
        g = torch.Generator().manual_seed(cfg.run.seed + 123)
        self.grid_z = torch.randn(cfg.run.grid_size, self.G.z_dim, generator=g).to(dev)
        self.grid_c = self.runtime.grid_cameras(cfg.run.grid_size, g).to(dev)
        # a resumed run drops the records logged after its checkpoint (they are trained again), a fresh one all
        self.stats_log = StatsLog(self.run_dir, keep_until_step=self.step) if dist_info.is_main else None
        self._saved_step = self.step if header is not None else -1  # step of the checkpoint on disk
        self.sums: dict[str, list[float]] = {}
        self._save_reals()
        if dist_info.is_main:  # only once every input is checked: a run refused at setup leaves no run folder
            self.run_dir.mkdir(parents=True, exist_ok=True)
            remove_stale_temps_in(self.run_dir, recursive=True)  # checkpoints and samples of a killed run
            atomic_write_json(self.run_dir / "config.json", cfg.to_dict())

    def _loader(self, dev: torch.device) -> torch.utils.data.DataLoader:
        cfg = self.cfg
        sampler = PositionSampler(
            len(self.dataset), cfg.optim.batch, self.dist.rank, self.world, cfg.run.seed, start_step=self.step
        )
        return torch.utils.data.DataLoader(
            self.dataset,
            batch_size=self.batch_gpu,
            sampler=sampler,
            num_workers=cfg.run.workers,
            pin_memory=backends.pin_memory(dev),
            drop_last=True,
            persistent_workers=cfg.run.workers > 0,
            # own generator: creating the iterator must not consume the global RNG
            generator=torch.Generator().manual_seed(cfg.run.seed + 17 * self.step),
        )

    def _save_reals(self) -> None:
        path = self.run_dir / "samples" / "reals.png"
        if self.dist.is_main and not path.exists():
            n = min(self.cfg.run.grid_size, len(self.dataset))
            atomic_save_png(path, make_grid([self.dataset[i]["image"].permute(1, 2, 0).numpy() for i in range(n)], 4))

    def run(self, on_tick: Callable[[dict[str, Any]], None] | None, on_step: Callable[[int, int], None] | None) -> dict:
        cfg, total = self.cfg, int(self.cfg.run.kimg * 1000)
        tick_start_nimg, tick_start_time = self.nimg, time.time()
        start_time = tick_start_time
        while True:
            stopped = self._stop_reason(total, start_time)
            if stopped is None:
                self._train_step()
                if on_step is not None and self.dist.is_main:
                    on_step(self.nimg, total)
                if self.nimg < tick_start_nimg + cfg.run.tick_kimg * 1000:
                    continue
            now = time.time()
            if stopped is not None and self.nimg == tick_start_nimg:  # ended right on a tick: no empty tick record
                if self._saved_step != self.step:
                    self._snapshot({})
            else:
                record = self._tick_record(now - tick_start_time, self.nimg - tick_start_nimg, now - start_time)
                tick_start_nimg, tick_start_time = self.nimg, now
                if stopped is not None or self.tick % cfg.run.snapshot_ticks == 0:
                    self._snapshot(record)
                if self.dist.is_main:
                    self.stats_log.write(record)
                    if on_tick is not None:
                        on_tick(record)
            if stopped is not None:
                summary = {"out": str(self.run_dir), "nimg": self.nimg, "steps": self.step}
                return {**summary, "checkpoint": str(self.ckpt_path), "stopped": stopped, "world": self.world}

    def _stop_reason(self, total: int, start_time: float) -> str | None:
        """'kimg' | 'max_steps' | 'max_minutes' once the run is over, else None (agreed across processes)."""
        run = self.cfg.run
        out_of_time = run.max_minutes is not None and time.time() - start_time >= run.max_minutes * 60
        if self.world > 1:  # every process must stop at the same step
            flag = torch.tensor([float(out_of_time)], device=self.dist.device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            out_of_time = bool(flag.item())
        if self.nimg >= total:
            return "kimg"
        if run.max_steps is not None and self.step >= run.max_steps:
            return "max_steps"
        return "max_minutes" if out_of_time else None

    def _train_step(self) -> None:
        """One optimisation step: every phase due at this step, then the EMA update."""
        dev, bg, G, D = self.dist.device, self.batch_gpu, self.G, self.D
        batch_data = next(self.data_iter)
        st = self.loss.step_state(self.nimg)
        real = self.loss.real_images(batch_data["image"].to(dev), st)
        real_c = batch_data["camera"].to(dev) if "camera" in batch_data else torch.zeros(bg, LABEL_DIM, device=dev)
        all_z = torch.randn(len(self.phases) * bg, G.z_dim, device=dev).split(bg)
        all_c = self.runtime.fake_cameras(len(self.phases) * bg).to(dev).split(bg)
        for phase, z, c in zip(self.phases, all_z, all_c, strict=True):
            if self._skip(phase):
                continue
            module = G if phase.module == "G" else D
            G.requires_grad_(phase.module == "G")
            D.requires_grad_(phase.module == "D")
            phase.opt.zero_grad(set_to_none=True)
            stats = self.loss.accumulate_gradients(phase.name, real, real_c, z, c, float(phase.interval), st)
            _check_finite(stats, self.step, self.nimg, phase.name, self.ckpt_path)
            params = list(module.parameters())
            sync_gradients(params, self.world)
            if not all(torch.isfinite(p.grad).all() for p in params if p.grad is not None):
                _check_finite({f"grad/{phase.name}": float("nan")}, self.step, self.nimg, phase.name, self.ckpt_path)
            phase.opt.step()
            for k, v in stats.items():
                self.sums.setdefault(k, []).append(v)
        G.requires_grad_(False)
        D.requires_grad_(False)
        self._update_ema()
        self.nimg += self.cfg.optim.batch
        self.step += 1

    def _skip(self, phase: Phase) -> bool:
        loss = self.cfg.loss
        return (
            self.step % phase.interval != 0
            or (phase.name == "Greg" and loss.density_reg == 0)
            or (phase.name == "Dreg" and loss.r1_gamma == 0)
        )

    @torch.no_grad()
    def _update_ema(self) -> None:
        beta = ema_beta(self.nimg, self.cfg.optim.batch, self.cfg.ema_kimg, self.cfg.schedule.ema_rampup)
        for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters(), strict=True):
            p_ema.copy_(p.detach().lerp(p_ema, beta))
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers(), strict=True):
            b_ema.copy_(b)

    def _tick_record(self, sec: float, tick_nimg: int, total_sec: float) -> dict[str, Any]:
        """The tick's stats record (schedule values, timing, mean of each loss stat); resets the sums."""
        self.tick += 1
        st = self.loss.step_state(self.nimg)
        record = {
            "tick": self.tick,
            "kimg": self.nimg / 1000,
            "step": self.step,
            "nrr": st.nrr,
            "blur_sigma": st.blur_sigma,
            "gpc_swap_prob": st.swap_prob,
            "sec_per_tick": sec,
            "sec_per_kimg": sec / max(tick_nimg / 1000, 1e-9),
            "total_sec": total_sec,
            **{k: float(np.mean(v)) for k, v in self.sums.items()},
        }
        self.sums.clear()
        return record

    def _checkpoint_extra(self) -> dict[str, Any]:
        """What samplers need beyond the config: the method and the resolved pose prior of pose-free runs."""
        prior = self.runtime.pose_prior
        return {"method": self.cfg.method_name, "pose_source": self.cfg.spec.pose_source,
                "pose_prior": None if prior is None else prior.to_dict()}

    def _snapshot(self, record: dict[str, Any]) -> None:
        """Sample grids + checkpoint (main process); every process contributes its RNG state."""
        rank_rng = gather_rng_states(self.world)
        if self.dist.is_main:
            nrr = self.loss.step_state(self.nimg).nrr
            save_grids(render_grid(self.G_ema, self.grid_z, self.grid_c, nrr=nrr), self.run_dir, self.nimg / 1000)
            save_checkpoint(
                self.ckpt_path,
                {"G": self.G, "D": self.D, "G_ema": self.G_ema},
                self.optimizers,
                self.cfg.to_dict(),
                {"nimg": self.nimg, "step": self.step, "tick": self.tick, "nrr": nrr},
                extra=self._checkpoint_extra(),
                extra_tensors={f"rng_rank.{r}": t for r, t in enumerate(rank_rng)},
            )
            record["checkpoint"] = str(self.ckpt_path)
        self._saved_step = self.step
        flat = torch.cat([p.detach().flatten() for p in self.G.parameters()])
        record["replicas_in_sync"] = all_equal(flat, self.world)
        barrier(self.world)
