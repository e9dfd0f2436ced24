"""The generic GAN training loop: phases with lazy regularisation, EMA, ticks, snapshots, exact resume, NaN stop."""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch

from ..data.reader import LMDBDataset
from ..methods import get_method
from ..methods.schedule import ema_beta, lazy_reg_adjust
from ..utils.files import atomic_write_json
from .checkpoint import load_checkpoint, load_tensors, read_header, save_checkpoint
from .config import TrainConfig
from .distributed import all_equal, barrier, broadcast_module, gather_rng_states, init_distributed, sync_gradients
from .logging import StatsLog, render_grid, save_grids

CHECKPOINT = "checkpoint.safetensors"
#: Config sections that may change when a run is resumed (run length and logging only).
RESUMABLE_CHANGES = ("run", "data", "out")


class TrainingDiverged(RuntimeError):
    """A loss or gradient became NaN/inf; the last good checkpoint is kept."""


@dataclass
class Phase:
    name: str
    module: str  # "G" or "D"
    opt: torch.optim.Optimizer
    interval: int


class PositionSampler(torch.utils.data.Sampler[int]):
    """Endless, deterministic sample order: epoch e is randperm(n) seeded by (seed, e); rank r of w takes its slice.

    Global position p = step * batch + rank * batch_per_rank + i, so a run resumed at `start_step` reads exactly
    the samples an uninterrupted run would have read.
    """

    def __init__(self, n: int, batch: int, rank: int, world: int, seed: int, start_step: int) -> None:
        self.n, self.batch, self.rank, self.world, self.seed, self.start = n, batch, rank, world, seed, start_step
        self._perms: dict[int, torch.Tensor] = {}

    def _index(self, pos: int) -> int:
        epoch = pos // self.n
        if epoch not in self._perms:
            self._perms = {
                epoch: torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed * 100003 + epoch))
            }
        return int(self._perms[epoch][pos % self.n])

    def __iter__(self) -> Iterator[int]:
        per_rank = self.batch // self.world
        step = self.start
        while True:
            base = step * self.batch + self.rank * per_rank
            for i in range(per_rank):
                yield self._index(base + i)
            step += 1


def _check_finite(stats: dict[str, float], step: int, nimg: int, phase: str, ckpt: Path) -> None:
    bad = {k: v for k, v in stats.items() if not math.isfinite(v)}
    if bad:
        raise TrainingDiverged(
            f"training diverged at step {step} (kimg {nimg / 1000:.3f}), phase {phase}: {bad}. "
            f"The last good checkpoint is kept: {ckpt if ckpt.exists() else 'none written yet'}. "
            "Lower the learning rates or raise loss.r1_gamma, then resume or restart."
        )


def _check_resume(cfg: TrainConfig, header: dict[str, Any], path: Path) -> None:
    old, new = dict(header["config"]), cfg.to_dict()
    diff = sorted(k for k in new if k not in RESUMABLE_CHANGES and old.get(k) != new[k])
    if diff:
        raise ValueError(
            f"{path} was trained with different settings in {diff}; resume with the same config "
            "(only run.* may change) or choose a new --out"
        )


def train(
    cfg: TrainConfig,
    resume: bool = True,
    on_tick: Callable[[dict[str, Any]], None] | None = None,
    on_step: Callable[[int, int], None] | None = None,
    device: str = "auto",
) -> dict[str, Any]:
    """Train `cfg.method` on `cfg.data` into `cfg.out`; resumes exactly from `<out>/checkpoint.safetensors`.

    Returns a summary {out, nimg, steps, checkpoint, stopped}. Raises TrainingDiverged on NaN/inf.
    The intra-op thread count set for CPU training (`run.cpu_threads`) is restored on return.
    """
    threads = torch.get_num_threads()
    try:
        return _train(cfg, resume, on_tick, on_step, device)
    finally:
        torch.set_num_threads(threads)


def _train(
    cfg: TrainConfig,
    resume: bool,
    on_tick: Callable[[dict[str, Any]], None] | None,
    on_step: Callable[[int, int], None] | None,
    device: str,
) -> dict[str, Any]:
    dist_info = init_distributed(device)
    dev, rank, world = dist_info.device, dist_info.rank, dist_info.world
    batch = cfg.optim.batch
    if batch % world:
        raise ValueError(f"batch {batch} is not divisible by the number of processes {world}")
    batch_gpu = batch // world
    run_dir = Path(cfg.out)
    ckpt_path = run_dir / CHECKPOINT
    if dev.type == "cpu":
        threads = cfg.run.cpu_threads or max(1, (os.cpu_count() or 1) // world - cfg.run.workers)
        torch.set_num_threads(threads)
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = cfg.run.allow_tf32
        torch.backends.cudnn.allow_tf32 = cfg.run.allow_tf32
    header = read_header(ckpt_path) if resume and ckpt_path.exists() else None
    if header is not None:
        _check_resume(cfg, header, ckpt_path)
    if dist_info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(run_dir / "config.json", cfg.to_dict())
    torch.manual_seed(cfg.run.seed * world + rank)
    np.random.seed((cfg.run.seed * world + rank) % (1 << 31))

    dataset = LMDBDataset(cfg.data, fields=["image", "camera"], xflip=cfg.run.xflip)
    if dataset.resolution != cfg.generator.img_resolution:
        raise ValueError(
            f"dataset resolution {dataset.resolution} != generator img_resolution "
            f"{cfg.generator.img_resolution}; pick a matching preset or --set generator.img_resolution"
        )
    cams = dataset.cameras()
    if cfg.run.xflip:
        from ..cameras.camera import Cameras

        cams = torch.cat([cams, Cameras.from_label(cams).mirror().to_label()])
    gen_cfg, disc_cfg = cfg.generator, cfg.discriminator
    if not cfg.run.mixed_precision:  # fp32 everywhere: switch off the fp16 blocks EG3D uses (SR, D top resolutions)
        gen_cfg = dataclasses.replace(
            gen_cfg, num_fp16_res=0, superres=dataclasses.replace(gen_cfg.superres, num_fp16_res=0)
        )
        disc_cfg = dataclasses.replace(disc_cfg, num_fp16_res=0)
    runtime = get_method(cfg.method).build(gen_cfg, disc_cfg, cfg.loss, batch, cams, dev)
    G, D, loss = runtime.G, runtime.D, runtime.loss
    broadcast_module(G, world)
    broadcast_module(D, world)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)

    phases: list[Phase] = []
    for name, module, lr, interval in (
        ("G", G, cfg.optim.glr, cfg.optim.g_reg_interval),
        ("D", D, cfg.optim.dlr, cfg.optim.d_reg_interval),
    ):
        mlr, betas = lazy_reg_adjust(lr, tuple(cfg.optim.betas), interval)
        opt = torch.optim.Adam(module.parameters(), lr=mlr, betas=betas, eps=cfg.optim.eps)
        phases += [Phase(f"{name}main", name, opt, 1), Phase(f"{name}reg", name, opt, interval)]
    optimizers = {"G": phases[0].opt, "D": phases[2].opt}
    nimg = step = tick = 0
    if header is not None:
        header = load_checkpoint(ckpt_path, {"G": G, "D": D, "G_ema": G_ema}, optimizers, restore_rng=dist_info.is_main)
        nimg, step, tick = (int(header["progress"][k]) for k in ("nimg", "step", "tick"))
        if not dist_info.is_main:  # each process continues its own torch RNG stream
            torch.set_rng_state(load_tensors(ckpt_path, "rng_rank")[str(rank)])

    sampler = PositionSampler(len(dataset), batch, rank, world, cfg.run.seed, start_step=step)
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_gpu,
        sampler=sampler,
        num_workers=cfg.run.workers,
        pin_memory=dev.type == "cuda",
        drop_last=True,
        persistent_workers=cfg.run.workers > 0,
        # own generator: creating the iterator must not consume the global RNG
        generator=torch.Generator().manual_seed(cfg.run.seed + 17 * step),
    )
    data_iter = iter(loader)
    grid_n = cfg.run.grid_size
    g = torch.Generator().manual_seed(cfg.run.seed + 123)
    grid_z = torch.randn(grid_n, G.z_dim, generator=g).to(dev)
    grid_c = cams[torch.randint(len(cams), (grid_n,), generator=g)].to(dev)
    stats_log = StatsLog(run_dir) if dist_info.is_main else None
    if dist_info.is_main and not (run_dir / "samples" / "reals.png").exists():
        from ..utils.files import atomic_save_png
        from ..utils.visual import make_grid

        reals = [dataset[i]["image"].permute(1, 2, 0).numpy() for i in range(min(grid_n, len(dataset)))]
        atomic_save_png(run_dir / "samples" / "reals.png", make_grid(reals, 4))

    total = int(cfg.run.kimg * 1000)
    tick_start_nimg, tick_start_time, start_time = nimg, time.time(), time.time()
    sums: dict[str, list[float]] = {}
    stopped = "kimg"
    while True:
        out_of_time = cfg.run.max_minutes is not None and time.time() - start_time >= cfg.run.max_minutes * 60
        if world > 1:  # every process must stop at the same step
            flag = torch.tensor([float(out_of_time)], device=dev)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            out_of_time = bool(flag.item())
        done = nimg >= total or (cfg.run.max_steps is not None and step >= cfg.run.max_steps) or out_of_time
        if done:
            stopped = "kimg" if nimg >= total else ("max_steps" if not out_of_time else "max_minutes")
        if not done:
            batch_data = next(data_iter)
            st = loss.step_state(nimg)
            real = loss.real_images(batch_data["image"].to(dev), st)
            real_c = batch_data["camera"].to(dev)
            all_z = torch.randn(len(phases) * batch_gpu, G.z_dim, device=dev).split(batch_gpu)
            all_c = runtime.fake_cameras(len(phases) * batch_gpu).to(dev).split(batch_gpu)
            for phase, z, c in zip(phases, all_z, all_c):
                if (
                    step % phase.interval != 0
                    or (phase.name == "Greg" and cfg.loss.density_reg == 0)
                    or (phase.name == "Dreg" and cfg.loss.r1_gamma == 0)
                ):
                    continue
                module = G if phase.module == "G" else D
                G.requires_grad_(phase.module == "G")
                D.requires_grad_(phase.module == "D")
                phase.opt.zero_grad(set_to_none=True)
                stats = loss.accumulate_gradients(phase.name, real, real_c, z, c, float(phase.interval), st)
                _check_finite(stats, step, nimg, phase.name, ckpt_path)
                params = [p for p in module.parameters()]
                sync_gradients(params, world)
                grads_ok = all(torch.isfinite(p.grad).all() for p in params if p.grad is not None)
                if not grads_ok:
                    _check_finite({f"grad/{phase.name}": float("nan")}, step, nimg, phase.name, ckpt_path)
                phase.opt.step()
                for k, v in stats.items():
                    sums.setdefault(k, []).append(v)
            G.requires_grad_(False)
            D.requires_grad_(False)
            beta = ema_beta(nimg, batch, cfg.ema_kimg, cfg.schedule.ema_rampup)
            with torch.no_grad():
                for p_ema, p in zip(G_ema.parameters(), G.parameters()):
                    p_ema.copy_(p.detach().lerp(p_ema, beta))
                for b_ema, b in zip(G_ema.buffers(), G.buffers()):
                    b_ema.copy_(b)
            nimg += batch
            step += 1
            if on_step is not None and dist_info.is_main:
                on_step(nimg, total)
        if not done and nimg < tick_start_nimg + cfg.run.tick_kimg * 1000:
            continue
        # ---------------------------------------------------------------------------------------- tick
        tick += 1
        now = time.time()
        st = loss.step_state(nimg)
        record = {
            "tick": tick,
            "kimg": nimg / 1000,
            "step": step,
            "nrr": st.nrr,
            "blur_sigma": st.blur_sigma,
            "gpc_swap_prob": st.swap_prob,
            "sec_per_tick": now - tick_start_time,
            "sec_per_kimg": (now - tick_start_time) / max((nimg - tick_start_nimg) / 1000, 1e-9),
            "total_sec": now - start_time,
            **{k: float(np.mean(v)) for k, v in sums.items()},
        }
        sums.clear()
        tick_start_nimg, tick_start_time = nimg, now
        snapshot = done or (tick % cfg.run.snapshot_ticks == 0)
        if snapshot:
            rank_rng = gather_rng_states(world)
            if dist_info.is_main:
                grids = render_grid(G_ema, grid_z, grid_c, nrr=st.nrr)
                save_grids(grids, run_dir, nimg / 1000)
                save_checkpoint(
                    ckpt_path,
                    {"G": G, "D": D, "G_ema": G_ema},
                    optimizers,
                    cfg.to_dict(),
                    {"nimg": nimg, "step": step, "tick": tick, "nrr": st.nrr},
                    extra_tensors={f"rng_rank.{r}": t for r, t in enumerate(rank_rng)},
                )
                record["checkpoint"] = str(ckpt_path)
            record["replicas_in_sync"] = all_equal(torch.cat([p.detach().flatten() for p in G.parameters()]), world)
            barrier(world)
        if dist_info.is_main:
            stats_log.write(record)
            if on_tick is not None:
                on_tick(record)
        if done:
            break
    return {
        "out": str(run_dir),
        "nimg": nimg,
        "steps": step,
        "checkpoint": str(ckpt_path),
        "stopped": stopped,
        "world": world,
    }
