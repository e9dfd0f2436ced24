"""Ko et al.'s P / E pre-training on pseudo pairs as a task of the one training engine."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..train.checkpoint import load_tensors, read_header
from ..train.distributed import sync_gradients
from ..train.engine import EngineSettings, run_task
from ..train.task import RunContext, Schedule, Task
from ..utils.config import to_dict
from .ko import ARCHS, KO_FORMAT, KO_VERSION, KoDistillConfig, latent_loss, pose_losses, pseudo_pairs, save_ko_encoder
from .ko_nets import ROT_DIMS, KoLatentEncoder, KoPoseEstimator

#: Config keys that may change when a run resumes.
RESUMABLE = ("steps", "log_every", "snapshot_every", "max_minutes", "out")


def check_ko(arch: str, cfg: KoDistillConfig) -> None:
    """ValueError naming the option when `arch` or `cfg` cannot be trained."""
    if arch not in ARCHS:
        raise ValueError(f"arch must be one of {', '.join(ARCHS)}, got {arch!r}")
    if cfg.representation not in ROT_DIMS:
        raise ValueError(f"representation must be one of {', '.join(ROT_DIMS)}")
    if cfg.e4e.optimizer not in ("ranger", "adam"):
        raise ValueError(f"e4e.optimizer must be ranger or adam, got {cfg.e4e.optimizer!r}")
    if cfg.steps < 1 or cfg.batch < 1 or cfg.pairs < 1 or cfg.log_every < 1 or cfg.snapshot_every < 1:
        raise ValueError("steps, batch, pairs, log_every and snapshot_every must be >= 1")
    if cfg.max_minutes is not None and not cfg.max_minutes > 0:
        raise ValueError(f"max_minutes must be > 0, got {cfg.max_minutes}")


def ko_config(sets: Sequence[str] = (), backbone_weights: str | None = None, random_init: bool = False,
              steps: int | None = None, minutes: float | None = None) -> KoDistillConfig:
    """The config of `distill-encoder --arch ko-*`: the defaults, the `--set` overrides, then the options."""
    from ..utils.config import apply_overrides

    sets = list(sets) + ([f"backbone_weights={json.dumps(backbone_weights)}"] if backbone_weights else [])
    sets += (["random_init=true"] if random_init else []) + ([f"steps={steps}"] if steps is not None else [])
    sets += [f"max_minutes={minutes}"] if minutes is not None else []
    return apply_overrides(KoDistillConfig(), sets)


class KoTask(Task):
    """P ('ko-pose') or E ('ko-latent'), its optimiser, e4e's latent D state, and one step on pseudo pairs."""

    def __init__(self, arch: str, ckpt: Path, cfg: KoDistillConfig, ctx: RunContext) -> None:
        from ..generate.loading import load_generator
        from ..invert.losses import build_perceptual
        from ..invert.projector import latent_stats

        torch.manual_seed(cfg.seed)
        self.arch, self.ckpt, self.cfg, self.ctx = arch, Path(ckpt), cfg, ctx
        G, _ = load_generator(ckpt, device=ctx.device)
        self.G, r = G, G.config.rendering
        self.notes: list[str] = []
        self.D: nn.Module | None = None
        self.perceptual: Any = None
        self.E = KoLatentEncoder(cfg, G.w_dim) if arch != "ko-pose" else None
        net: nn.Module = KoPoseEstimator(cfg, r.avg_camera_radius, r.focal) if self.E is None else self.E
        if cfg.random_init:
            self.notes.append("RANDOM INIT (--random-init): no ImageNet / IR-SE-50 backbone")
        else:
            from .pretrained import load_ko_backbone, require_pretrained

            self.notes.append(require_pretrained(f"{arch} backbone",
                                                 lambda: load_ko_backbone(net, arch, cfg.backbone_weights)))
        net.to(ctx.device)
        if self.E is not None:
            self.E.w_avg.copy_(latent_stats(G, min(cfg.pairs, 5000), cfg.truncation, cfg.seed)[0])
            choice = "random-vgg-lpips" if cfg.random_init and cfg.perceptual == "auto" else cfg.perceptual
            self.perceptual = build_perceptual(choice, "vgg").to(ctx.device)
            if self.perceptual.info.note:
                self.notes.append(f"E loss: {self.perceptual.info.note}")
            if cfg.lambda_adv > 0:
                self.D = self._image_discriminator()
        if arch != "ko-pose" and cfg.e4e.optimizer == "ranger":
            from .ranger import Ranger

            opt: torch.optim.Optimizer = Ranger(net.parameters(), lr=cfg.lr)
        else:
            opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
        self.e4e = None
        modules, opts = {"net": net}, {"net": opt}
        if arch != "ko-pose" and cfg.e4e.w_discriminator_lambda > 0:
            from .e4e_train import init_state

            self.e4e = init_state(cfg.e4e, G.w_dim, ctx.device, cfg.seed)
            modules["Dw"], opts["Dw"] = self.e4e.D, self.e4e.opt
        self.net, self.opt = net, opt
        self.cache: dict[int, dict[str, Tensor]] = {}
        self.first: dict[str, Any] | None = None
        self.last: dict[str, Any] | None = None
        self._sha: str | None = None
        schedule = Schedule(cfg.batch, (("steps", cfg.steps),), tick_steps=cfg.log_every,
                            snapshot_ticks=math.ceil(cfg.snapshot_every / cfg.log_every), max_minutes=cfg.max_minutes)
        super().__init__(schedule, modules, opts)

    def _image_discriminator(self) -> nn.Module | None:
        """The generator checkpoint's D, frozen (eq. 1, 5), or None with a note when it holds none."""
        header = read_header(self.ckpt)
        if "D" not in header["modules"]:
            self.notes.append("checkpoint holds no D: adversarial term skipped")
            return None
        from ..networks import DualDiscriminator
        from ..train.config import TrainConfig

        D = DualDiscriminator(TrainConfig.from_dict(header["config"]).discriminator)
        D.load_state_dict(load_tensors(self.ckpt, "D"))
        return D.to(self.ctx.device).eval().requires_grad_(False)

    def config(self) -> dict[str, Any]:
        return {"arch": self.arch, "generator": str(self.ckpt.resolve()), **to_dict(self.cfg)}

    def header_extra(self) -> dict[str, Any]:
        from ..utils.files import sha256_file

        if self._sha is None:  # once per run, not at every snapshot
            self._sha = sha256_file(self.ckpt)
        r = self.G.config.rendering
        return {"generator_sha256": self._sha, "radius": r.avg_camera_radius, "focal": r.focal, "w_dim": self.G.w_dim,
                "notes": self.notes}

    def state_tensors(self) -> dict[str, Tensor]:
        return self.e4e.tensors() if self.e4e is not None else {}

    def restore(self, ckpt: Path, header: dict[str, Any]) -> None:
        if self.e4e is not None:
            self.e4e.load_tensors(load_tensors(ckpt, None))
        self.first, self.last = header["progress"].get("first"), header["progress"].get("last")

    def progress(self, step: int) -> dict[str, Any]:
        return {"first": self.first, "last": self.last}

    def _batch(self, idx: list[int]) -> dict[str, Tensor]:
        """The pseudo pairs `idx`, rendered once and kept when the set is small (`cache_pairs`)."""
        if self.cfg.pairs > self.cfg.cache_pairs:
            return pseudo_pairs(self.G, self.cfg, idx)
        missing = [i for i in idx if i not in self.cache]
        if missing:
            fresh = pseudo_pairs(self.G, self.cfg, missing)
            for k, i in enumerate(missing):
                self.cache[i] = {key: v[k : k + 1] for key, v in fresh.items()}
        return {key: torch.cat([self.cache[i][key] for i in idx]) for key in ("w", "camera", "image")}

    def step(self, step: int) -> dict[str, float]:
        cfg, ctx = self.cfg, self.ctx
        bg, rank = ctx.batch_gpu, ctx.dist.rank
        batch = self._batch([(step * cfg.batch + j) % cfg.pairs for j in range(rank * bg, (rank + 1) * bg)])
        self.net.train()
        if self.E is None:
            rot, pos = self.net(batch["image"])
            loss, rec = pose_losses(rot, pos, batch["camera"], cfg.lambda_trans)
        else:
            loss, rec = latent_loss(self.E, self.G, self.D, self.perceptual, self.e4e, cfg, step, batch,
                                    ctx.dist.world)
        ctx.check_finite({"Loss/ko": float(loss.detach())}, self.arch, "Lower --set lr=...")
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.E is not None:
            from .e4e_train import drop_inactive_grads

            drop_inactive_grads(self.E.encoder, rec["stage"])
        sync_gradients([p for p in self.net.parameters() if p.grad is not None], ctx.dist.world)
        self.opt.step()
        self.last = {**rec, "step": step, "loss": float(loss.detach())}
        self.first = self.first or self.last
        return {"Loss/ko": self.last["loss"], **rec}

    def summary(self) -> dict[str, Any]:
        return {"first": self.first, "last": self.last, "notes": self.notes}


def distill_ko(arch: str, ckpt: Path, out: Path, cfg: KoDistillConfig,
               on_step: Callable[[int, int, dict], None] | None = None, resume: bool = True, device: str = "auto",
               progress: bool = False) -> dict:
    """Pre-train Ko et al.'s P ('ko-pose') or E ('ko-latent') on pseudo pairs of the generator in `ckpt`.

    The engine keeps the run in `out` (config.json, checkpoint.safetensors with e4e's latent D, its Adam, pools and
    their generator, stats.jsonl) and continues it exactly when `resume`. Once `cfg.steps` are reached the main
    process writes `out/<arch>.safetensors` (weights + JSON header: format, version, arch, config, generator sha256).
    `on_step(step, steps, record)` after every step. Returns the engine's summary with {checkpoint (the encoder file
    once written, else the training state), first, last (per-step records), seconds, notes}.
    """
    check_ko(arch, cfg)
    t0, task = time.perf_counter(), []

    def build(ctx: RunContext) -> KoTask:
        task.append(KoTask(arch, Path(ckpt), cfg, ctx))
        return task[0]

    step_cb = None if on_step is None else lambda done, total: on_step(done, total, dict(task[0].last or {}))
    settings = EngineSettings(out=str(out), seed=cfg.seed, resume=resume, device=device, resumable=RESUMABLE,
                              progress=progress, label=f"distill {arch}")
    summary = run_task(build, settings, step_cb)
    summary["seconds"] = time.perf_counter() - t0
    if summary["stopped"] == "steps" and task[0].ctx.dist.is_main:
        summary["checkpoint"] = str(export(task[0], Path(out)))
    return summary


def export(task: KoTask, out: Path) -> Path:
    """`out/<arch>.safetensors`: the trained P or E with the header that `load_ko_encoder` reads."""
    header = {"format": KO_FORMAT, "version": KO_VERSION, "arch": task.arch, "config": to_dict(task.cfg),
              "generator": str(task.ckpt.resolve()), **task.header_extra(), "steps": task.cfg.steps,
              "last": task.last}
    return save_ko_encoder(task.net, header, out / f"{task.arch}.safetensors")
