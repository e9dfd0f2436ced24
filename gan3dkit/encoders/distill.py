"""Distil a frozen tri-plane generator into an encoder on its own renders (LP3D / TriPlaneNet), as an engine task."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from ..train.checkpoint import load_tensors, read_header
from ..train.engine import EngineSettings, run_task
from ..train.task import RunContext, Schedule, Task
from ..utils.files import atomic_save_png
from .config import DistillConfig
from .models import Teacher, build_student, load_teacher
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
    progress: bool = False,
    ticks: bool | None = None,
) -> dict[str, Any]:
    """Train ``cfg.arch`` from the generator ``cfg.generator`` into ``cfg.out``; resumes exactly from its checkpoint.

    Returns the engine's summary {out, steps, checkpoint, stopped, world, last, stats} with the student's provenance
    (lpips, identity, backbone, ...). `progress`: a progress bar on stderr; `ticks`: a line per tick (default: as
    `progress`).
    """
    cfg.validate()
    settings = EngineSettings(out=cfg.out, seed=cfg.run.seed, resume=resume, device=device,
                              cpu_threads=cfg.run.cpu_threads, resumable=RESUMABLE, progress=progress,
                              tick_lines=progress if ticks is None else ticks, label=f"distill {cfg.arch}")
    return run_task(lambda ctx: DistillTask(cfg, ctx), settings, on_step, on_tick)


def distill_config(arch: str, ckpt: str | Path, out: str | Path, preset: str = "paper", sets: Sequence[str] = (),
                   *, steps: int | None = None, minutes: float | None = None, init: str | Path | None = None,
                   random_init: bool = False, **paths: str | Path | None) -> DistillConfig:
    """The validated config of `distill-encoder`: `preset` for `arch`, the `sets` overrides, then the options.

    `paths`: size, backbone_weights, lpips_backbone, identity_weights, data (None: the preset's).
    """
    from ..train.checkpoint import expect_kind
    from ..utils.config import apply_overrides
    from ..utils.items import check_out_folder
    from .config import DISTILL_PRESETS
    from .registry import get_arch

    get_arch(arch, "--arch")
    if preset not in DISTILL_PRESETS:
        raise ValueError(f"unknown --preset {preset!r}; choose one of {', '.join(DISTILL_PRESETS)}")
    expect_kind(ckpt, "generator", "--ckpt", accept=("encoder",))  # an encoder checkpoint carries its teacher G
    check_out_folder(Path(out))
    overrides = list(sets) + [f"generator={json.dumps(str(ckpt))}", f"out={json.dumps(str(out))}"]
    overrides += [f"{key}={json.dumps(str(value))}" for key, value in paths.items() if value is not None]
    for key, option in (("random_init", random_init and "true"), ("init_from", init and json.dumps(str(init))),
                        ("run.steps", steps), ("run.max_minutes", minutes)):  # fmt: skip
        if option:
            overrides.append(f"{key}={option}")
    cfg = apply_overrides(DISTILL_PRESETS[preset](arch), overrides)
    cfg.validate()
    return cfg


def _init_architecture(cfg: DistillConfig) -> None:
    """``--init``: the architecture (arch, size, model) of the checkpoint the run starts from."""
    init = read_header(str(cfg.init_from)).get("config", {})
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


class DistillTask(Task):
    """The student, its optimisers and one distillation step; held-out validation at every tick."""

    def __init__(self, cfg: DistillConfig, ctx: RunContext) -> None:
        cfg.validate()
        dev, self.ctx = ctx.device, ctx
        torch.manual_seed(cfg.run.seed)  # the student's initial weights depend on the seed only
        if cfg.init_from and not ctx.resuming:
            _init_architecture(cfg)
        self.teacher: Teacher = load_teacher(cfg.generator, dev, cfg.run.nrr)
        self.student = build_student(cfg, self.teacher, dev)  # fills cfg.model, says where weights came from
        if cfg.init_from and not ctx.resuming:
            self.student.provenance["init"] = _init_weights(cfg.init_from, self.student)
        self.cfg = cfg
        ctx.seed_process()
        family = self.student.family
        self.stepper = (LP3DStep if family == "lp3d" else TriPlaneNetStep)(cfg, self.teacher, self.student, dev)
        # Train mode from the first step: R's decoder and SR are copied from the eval-mode teacher, and eval mode
        # fuses modulated convolutions (other rounding), so leaving it to the first validation made a resumed run's
        # first step differ from the uninterrupted one.
        self.student.train()
        run = cfg.run
        schedule = Schedule(cfg.optim.batch, (("steps", run.steps),), run.tick_steps, run.snapshot_ticks,
                            run.max_minutes)
        super().__init__(schedule, self.student.modules(), self.stepper.optimizers)
        self._last_val_images: tuple[torch.Tensor, ...] | None = None

    def config(self) -> dict[str, Any]:
        return self.cfg.to_dict()

    def start(self, step: int) -> None:
        self.val = self._val_set(self.ctx.device)

    def step(self, step: int) -> dict[str, float]:
        return self.stepper.step(step, self.ctx.batch_gpu, self.ctx.dist.world)

    def header_extra(self) -> dict[str, Any]:
        return {"generator_config": self.teacher.train_config, "nrr": self.teacher.nrr, **self.student.provenance}

    def tick_stats(self, step: int) -> dict[str, Any]:
        return {"stage": self.stepper.stage(max(step - 1, 0)), **self._validate()}  # the stage of the last step run

    def describe(self, record: dict[str, Any]) -> str:
        vals = "  ".join(f"{k.split('/')[-1]} {v:.3f}" for k, v in record.items() if k.startswith("val/"))
        return (f"step {record['step']:>7}  stage {record['stage']}  loss {record.get('Loss/E', float('nan')):.3f}"
                f"  {record['sec_per_step']:.2f} s/step  {vals}")

    def summary(self) -> dict[str, Any]:
        return dict(self.student.provenance)

    def _val_set(self, dev: torch.device) -> dict[str, Any]:
        """Held-out latents (seed 10**6 + run seed, never used in training) and augmented input cameras."""
        t, n = self.teacher, self.cfg.run.val_samples
        G: Any = t.G
        g = torch.Generator().manual_seed(10**6 + self.cfg.run.seed)
        z = torch.randn(n, G.z_dim, generator=g).to(dev)
        cams, pose = sample_cameras(self.cfg.cameras, n, t.cam.radius, t.cam.focal, t.cam.lookat, True, g)
        mv, _ = sample_cameras(self.cfg.cameras, n, t.cam.radius, t.cam.focal, t.cam.lookat, False, g)
        with torch.no_grad(), torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
            torch.manual_seed(10**6 + self.cfg.run.seed)  # backbone noise: never touch the training RNG stream
            ws = t.mapping(z, cams.to(dev), self.cfg.run)
            planes = G.synthesize_planes(ws)
            ref = G.render_planes(planes, cams.to(dev), ws, neural_rendering_resolution=t.nrr,
                                    deterministic_render=True)
            nov = G.render_planes(planes, mv.to(dev), ws, neural_rendering_resolution=t.nrr,
                                    deterministic_render=True)
        return {"cams": cams.to(dev), "pose": pose.to(dev), "mv": mv.to(dev), "image": ref["image"],
                "novel": nov["image"], "planes": planes}  # fmt: skip

    @torch.no_grad()
    def _validate(self) -> dict[str, float]:
        dev = self.ctx.device
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

    def save_samples(self, run_dir: Path, step: int) -> None:
        if self._last_val_images is None:  # no tick yet (a stop right at the start)
            return
        from ..utils.visual import make_grid, to_uint8_hwc

        inp, rec, nov = self._last_val_images
        rows = [im for trip in zip(to_uint8_hwc(inp), to_uint8_hwc(rec), to_uint8_hwc(nov), strict=False)
                for im in trip]
        atomic_save_png(run_dir / "samples" / f"val{step:07d}.png", make_grid(rows, 3))

