"""GAN training as an engine task: the method's G, D and loss, phases with lazy regularisation, EMA, sample grids."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from ..cameras import LABEL_DIM, Cameras
from ..data.reader import LMDBDataset
from ..data.validate import check_dataset_cameras
from ..methods.registry import BuildContext, MethodRuntime, MethodSpec, pose_free_methods
from ..methods.schedule import ema_beta, lazy_reg_adjust
from ..utils import backends
from ..utils.files import atomic_save_png
from ..utils.visual import make_grid
from .checkpoint import load_checkpoint
from .config import TrainConfig
from .distributed import sync_gradients
from .engine import CHECKPOINT, EngineSettings, run_task
from .logging import render_grid, save_grids
from .sampler import PositionSampler
from .task import RunContext, Schedule, Task, TrainingDiverged

__all__ = ["CHECKPOINT", "RESUMABLE_CHANGES", "GanTask", "TrainingDiverged", "train"]

#: Config sections that may change when a run is resumed (run length and logging only).
RESUMABLE_CHANGES = ("run", "data", "out")
_HINT = "Lower the learning rates or raise loss.r1_gamma"


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
    progress: bool = False,
) -> dict[str, Any]:
    """Train `cfg`'s method on `cfg.data` into `cfg.out`; resumes exactly from `<out>/checkpoint.safetensors`.

    Returns the engine's summary {out, nimg, steps, checkpoint, stopped, world, last, stats}; `on_step(nimg, total)`.
    Raises TrainingDiverged on NaN/inf. `progress`: a progress bar and tick lines on stderr. The thread count and the
    TF32 / cudnn.benchmark flags set for the run (`run.cpu_threads`, `run.allow_tf32`) are restored on return.
    """
    cfg.validate()
    settings = EngineSettings(
        out=cfg.out, seed=cfg.run.seed, resume=resume, device=device, cpu_threads=cfg.run.cpu_threads,
        workers=cfg.run.workers, policy=backends.BackendPolicy(allow_tf32=cfg.run.allow_tf32),
        resumable=RESUMABLE_CHANGES, progress=progress, tick_lines=progress, label="training",
    )
    return run_task(lambda ctx: GanTask(cfg, ctx), settings, on_step, on_tick)


def _check_camera_source(spec: MethodSpec, dataset: LMDBDataset, path: str) -> None:
    """A method that reads camera labels refuses a dataset whose cameras were sampled from a prior."""
    if spec.needs_labels and dataset.camera_source == "prior":
        raise ValueError(
            f"{path}: its cameras were sampled from a pose prior, not measured, so --method {spec.name} would "
            f"learn nothing about pose; train it with a pose-free method ({', '.join(pose_free_methods())})"
        )


def _build_runtime(
    cfg: TrainConfig, cams: Cameras | None, dataset_prior: dict | None, dev: torch.device
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
        beta1, beta2 = cfg.optim.betas
        mlr, betas = lazy_reg_adjust(lr, (beta1, beta2), interval)
        opt = torch.optim.Adam(module.parameters(), lr=mlr, betas=betas, eps=cfg.optim.eps)
        phases += [Phase(f"{name}main", name, opt, 1), Phase(f"{name}reg", name, opt, interval)]
    return phases


def _schedule(cfg: TrainConfig) -> Schedule:
    """Stops at kimg (rounded up to whole steps) or run.max_steps; a tick every run.tick_kimg."""
    batch, run = cfg.optim.batch, cfg.run
    stops = [("kimg", -(-int(run.kimg * 1000) // batch))]
    if run.max_steps is not None:
        stops.append(("max_steps", run.max_steps))
    tick_steps = 1
    while tick_steps * batch < run.tick_kimg * 1000:  # the first step count reaching tick_kimg
        tick_steps += 1
    return Schedule(batch, tuple(stops), tick_steps, run.snapshot_ticks, run.max_minutes, unit=batch)


class GanTask(Task):
    """One GAN run's networks, optimisers, data and step; the engine resumes, checkpoints, logs and stops it."""

    def __init__(self, cfg: TrainConfig, ctx: RunContext) -> None:
        cfg.validate()
        self.cfg, self.ctx, dev = cfg, ctx, ctx.device
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
        labels = self.dataset.cameras() if spec.needs_labels else None
        cams = None
        if labels is not None:  # refuse NaN/invalid labels now, naming the samples, instead of diverging later
            check_dataset_cameras(labels.numpy(), cfg.data)
            cams = Cameras.from_label(labels)  # the dataset's records, decoded once
        if cams is not None and cfg.run.xflip:
            cams = Cameras.cat([cams, cams.mirror()])
        self.runtime = _build_runtime(cfg, cams, self.dataset.meta.get("pose_prior"), dev)
        self.G, self.D, self.loss = self.runtime.G, self.runtime.D, self.runtime.loss
        self.z_dim = cast(int, self.G.z_dim)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.phases = _make_phases(cfg, self.G, self.D)
        modules = {"G": self.G, "D": self.D, "G_ema": self.G_ema}
        super().__init__(_schedule(cfg), modules, {"G": self.phases[0].opt, "D": self.phases[2].opt})
        if ctx.header is None and cfg.run.init:  # a fine-tune: the weights of another run, fresh optimisers and kimg
            load_checkpoint(cfg.run.init, modules, None, restore_rng=False)

    @property
    def nimg(self) -> int:
        return self.ctx.step * self.cfg.optim.batch

    def config(self) -> dict[str, Any]:
        return self.cfg.to_dict()

    def stored_config(self, saved: dict[str, Any]) -> dict[str, Any]:
        return TrainConfig.from_dict(saved).to_dict()  # a run saved in the older layout migrates

    def start(self, step: int) -> None:
        """The data order from `step` on, the fixed sample latents and cameras, and the reals grid."""
        cfg, dev = self.cfg, self.ctx.device
        sampler = PositionSampler(len(self.dataset), cfg.optim.batch, self.ctx.dist.rank, self.ctx.dist.world,
                                  cfg.run.seed, start_step=step)
        self.data_iter = iter(torch.utils.data.DataLoader(
            self.dataset, batch_size=cfg.optim.batch // self.ctx.dist.world, sampler=sampler,
            num_workers=cfg.run.workers, pin_memory=backends.pin_memory(dev), drop_last=True,
            persistent_workers=cfg.run.workers > 0,
            # own generator: creating the iterator must not consume the global RNG
            generator=torch.Generator().manual_seed(cfg.run.seed + 17 * step),
        ))
        g = torch.Generator().manual_seed(cfg.run.seed + 123)
        self.grid_z = torch.randn(cfg.run.grid_size, self.z_dim, generator=g).to(dev)
        self.grid_c = self.runtime.grid_cameras(cfg.run.grid_size, g).to(dev)
        path = self.ctx.run_dir / "samples" / "reals.png"
        if self.ctx.dist.is_main and not path.exists():
            n = min(cfg.run.grid_size, len(self.dataset))
            atomic_save_png(path, make_grid([self.dataset[i]["image"].permute(1, 2, 0).numpy() for i in range(n)], 4))

    def step(self, step: int) -> dict[str, float]:
        """One optimisation step: every phase due at this step, then the EMA update."""
        dev, world, G, D = self.ctx.device, self.ctx.dist.world, self.G, self.D
        bg = self.cfg.optim.batch // world
        batch_data = next(self.data_iter)
        st = self.loss.step_state(self.nimg)
        real = self.loss.real_images(batch_data["image"].to(dev), st)
        real_c = Cameras.from_label(  # dataset records; pose-free runs read none (zeros, D never conditions on them)
            batch_data["camera"].to(dev) if "camera" in batch_data else torch.zeros(bg, LABEL_DIM, device=dev))
        all_z = torch.randn(len(self.phases) * bg, self.z_dim, device=dev).split(bg)
        all_c = self.runtime.fake_cameras(len(self.phases) * bg).to(dev).split(bg)
        sums: dict[str, list[float]] = {}
        for phase, z, c in zip(self.phases, all_z, all_c, strict=True):
            if self._skip(phase, step):
                continue
            module = G if phase.module == "G" else D
            G.requires_grad_(phase.module == "G")
            D.requires_grad_(phase.module == "D")
            phase.opt.zero_grad(set_to_none=True)
            stats = self.loss.accumulate_gradients(phase.name, real, real_c, z, c, float(phase.interval), st)
            self.ctx.check_finite(stats, phase.name, _HINT)
            params = list(module.parameters())
            sync_gradients(params, world)
            if not all(torch.isfinite(p.grad).all() for p in params if p.grad is not None):
                self.ctx.check_finite({f"grad/{phase.name}": float("nan")}, phase.name, _HINT)
            phase.opt.step()
            for k, v in stats.items():
                sums.setdefault(k, []).append(v)
        G.requires_grad_(False)
        D.requires_grad_(False)
        self._update_ema()
        return {k: float(np.mean(v)) for k, v in sums.items()}

    def _skip(self, phase: Phase, step: int) -> bool:
        loss = self.cfg.loss
        return (
            step % phase.interval != 0
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

    def tick_stats(self, step: int) -> dict[str, Any]:
        st = self.loss.step_state(step * self.cfg.optim.batch)
        return {"nrr": st.nrr, "blur_sigma": st.blur_sigma, "gpc_swap_prob": st.swap_prob}

    def progress(self, step: int) -> dict[str, Any]:
        return {"nrr": self.loss.step_state(step * self.cfg.optim.batch).nrr}

    def header_extra(self) -> dict[str, Any]:
        """What samplers need beyond the config: the method and the resolved pose prior of pose-free runs."""
        prior = self.runtime.pose_prior
        return {"method": self.cfg.method_name, "pose_source": self.cfg.spec.pose_source,
                "pose_prior": None if prior is None else prior.to_dict()}

    def save_samples(self, run_dir: Path, step: int) -> None:
        nimg = step * self.cfg.optim.batch
        nrr = self.loss.step_state(nimg).nrr
        save_grids(render_grid(self.G_ema, self.grid_z, self.grid_c, nrr=nrr), run_dir, nimg / 1000)

    def describe(self, record: dict[str, Any]) -> str:
        losses = "  ".join(f"{k.split('/')[-1]} {v:.3f}" for k, v in record.items() if k.startswith("Loss/"))
        return (f"tick {record['tick']:>4}  kimg {record['kimg']:8.3f}  {record['sec_per_kimg']:7.1f} s/kimg  "
                f"nrr {record['nrr']}  {losses}")
