"""W/W+ projector with PTI's schedule, optionally with pose optimisation (seed 002 Alg. 1 alternating, Alg. 3 joint)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..cameras.camera import Cameras, as_cameras
from ..generate.views import view_cameras
from ..metrics.perceptual_loss import PerceptualLoss
from .config import PoseOptConfig, ProjectorConfig
from .losses import noise_buffers, noise_regularizer, normalize_noise
from .warp import WarpFeatures, warp_loss

if TYPE_CHECKING:
    from ..networks.generator import TriPlaneGenerator

StepFn = Callable[[int, int, dict], None]


@dataclass
class Projection:
    """Result of one projection: ws [1, num_ws, w_dim], the free w ([1, 1 or num_ws, w_dim]), the final camera."""

    ws: Tensor
    w: Tensor
    camera: Cameras
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0


@torch.no_grad()
def latent_stats(G: TriPlaneGenerator, samples: int, psi: float = 1.0, seed: int = 0) -> tuple[Tensor, float]:
    """(w_avg [1, 1, w_dim], sigma_w) from `samples` z's mapped with the frontal conditioning camera (methods.md §0).

    sigma_w = sqrt(sum |w - w_avg|^2 / N), as the StyleGAN2/PTI projector.
    """
    device = next(G.parameters()).device
    z = torch.from_numpy(np.random.RandomState(seed).randn(samples, G.z_dim)).float().to(device)
    cond = view_cameras(G, [0.0], 0.0, device).to_label().expand(samples, -1)
    w = G.mapping(z, cond, truncation_psi=psi)[:, :1]  # [N, 1, w_dim]
    w_avg = w.mean(0, keepdim=True)
    return w_avg, float(((w - w_avg).square().sum() / samples).sqrt())


def lr_at(t: float, cfg: ProjectorConfig) -> float:
    """PTI/StyleGAN projector lr at progress t in [0, 1): cosine ramp-down, linear ramp-up, peak cfg.lr."""
    ramp = min(1.0, (1.0 - t) / cfg.lr_rampdown)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    ramp = ramp * min(1.0, t / cfg.lr_rampup)
    return cfg.lr * ramp


class Renderer:
    """G.synthesis with the inversion's fixed settings (const noise, optional deterministic rendering)."""

    def __init__(self, G: TriPlaneGenerator, deterministic: bool, nrr: int | None = None) -> None:
        self.G, self.deterministic, self.nrr = G, deterministic, nrr

    def __call__(self, ws: Tensor, camera: Cameras | Tensor, G: TriPlaneGenerator | None = None) -> dict[str, Tensor]:
        return (G or self.G).synthesis(ws, camera, noise_mode="const", deterministic_render=self.deterministic,
                                       neural_rendering_resolution=self.nrr)


def project(
    G: TriPlaneGenerator,
    target: Tensor,  # [1, 3, H, W] in [-1, 1]
    camera: Cameras | Tensor,  # one initial (or fixed) rendering camera (a [1, 25] label is decoded once)
    cfg: ProjectorConfig,
    perceptual: PerceptualLoss,
    *,
    w_plus: bool = False,
    pose_mode: str = "fixed",
    camera_module: nn.Module | None = None,
    pose_cfg: PoseOptConfig | None = None,
    pose_params: list[dict] | None = None,
    warp_features: WarpFeatures | None = None,
    w_init: Tensor | None = None,
    deterministic: bool = True,
    nrr: int | None = None,
    on_step: StepFn | None = None,
) -> Projection:
    """Optimise w (or w+) and, with `pose_mode`, the camera, to reproduce `target`.

    pose_mode: 'fixed' (seed 002 Alg. 2, PTI), 'joint' (Alg. 3: one loss, one step on (w, pose)) or 'alternating'
    (Alg. 1: a w step on the image loss, then a pose step on pose_image_weight * image loss + warp_weight * warp
    loss, the warp comparing the target with the canonical render of the detached w reprojected by the current
    depth). The first `pose_cfg.warmup_steps` steps update only the pose; the w schedule (lr ramps, w-noise) runs
    over the remaining steps, as in Ko et al.'s code. `camera_module()` returns the current `Cameras`;
    G's noise buffers are optimised in place (`run.invert` passes a copy);
    `pose_params` are its optimiser groups.
    """
    t0 = time.perf_counter()
    device = target.device
    camera = as_cameras(camera)
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed)
    w_avg, w_std = latent_stats(G, cfg.w_avg_samples, cfg.w_avg_psi, cfg.seed)
    start = w_avg if w_init is None else w_init[:, :1].detach()
    w_opt = (start.repeat(1, G.num_ws, 1) if w_plus else start).clone().requires_grad_(True)
    bufs = noise_buffers(G) if cfg.optimize_noise else []
    if bufs:
        with torch.no_grad():
            for b in bufs:
                b.copy_(torch.randn(b.shape, generator=gen).to(device))
        for b in bufs:
            b.requires_grad_(True)
    w_optim = torch.optim.Adam([w_opt, *bufs], betas=(0.9, 0.999), lr=cfg.lr)
    posing = pose_mode != "fixed"
    if pose_mode not in ("fixed", "joint", "alternating"):
        raise ValueError(f"pose_mode must be fixed, joint or alternating, got {pose_mode!r}")
    if posing and (camera_module is None or pose_cfg is None):
        raise ValueError("pose optimisation needs camera_module and pose_cfg")
    # both set whenever posing (checked above); read only on the posing paths
    pose_module, pcfg = cast(nn.Module, camera_module), cast(PoseOptConfig, pose_cfg)
    pose_optim = torch.optim.Adam(pose_params or [{"params": list(pose_module.parameters())}]) if posing else None
    warmup = pcfg.warmup_steps if posing else 0
    render = Renderer(G, deterministic, nrr)
    target_feats = perceptual.features(target) if perceptual.available else None
    l2_weight = cfg.l2_weight if perceptual.available else max(cfg.l2_weight, 1.0)
    use_warp = pose_mode == "alternating" and pcfg.warp_weight > 0
    if use_warp:
        warp_fn = warp_features or WarpFeatures("rgb")
        canonical = view_cameras(G, [0.0], 0.0, device)
        target_warp = warp_fn(target)

    def image_loss(img: Tensor) -> tuple[Tensor, dict]:
        dist = perceptual.distance(img, target_feats).sum() if target_feats is not None else img.new_zeros(())
        mse = F.mse_loss(img, target)
        return dist + l2_weight * mse, {"perceptual": float(dist.detach()), "mse": float(mse.detach())}

    history: list[dict] = []
    steps = cfg.steps
    w_steps = max(1, steps - warmup)
    for step in range(steps):
        t = max(0, step - warmup) / w_steps
        lr = lr_at(t, cfg) if step >= warmup else 0.0
        for g in w_optim.param_groups:
            g["lr"] = lr
        noise_scale = w_std * cfg.noise_factor * max(0.0, 1.0 - t / cfg.noise_ramp) ** 2 if step >= warmup else 0.0
        w_noise = torch.randn(w_opt.shape, generator=gen).to(device) * noise_scale
        ws = (w_opt + w_noise).expand(-1, G.num_ws, -1) if not w_plus else w_opt + w_noise
        cam = pose_module() if posing else camera
        out = render(ws, cam)
        loss, rec = image_loss(out["image"])
        reg = noise_regularizer(bufs) if bufs else loss.new_zeros(())
        total = loss + cfg.noise_reg_weight * reg
        w_optim.zero_grad(set_to_none=True)
        if pose_optim is not None:
            pose_optim.zero_grad(set_to_none=True)
        total.backward()
        if step >= warmup:
            w_optim.step()
        if pose_mode == "joint" or (pose_mode == "alternating" and not use_warp and pcfg.pose_image_weight == 1.0):
            assert pose_optim is not None  # posing
            pose_optim.step()  # one loss drives both (Alg. 3; Alg. 1 without warp reduces to it)
        elif pose_mode == "alternating":
            assert pose_optim is not None  # posing
            pose_optim.zero_grad(set_to_none=True)
            ws_d = ws.detach() if step < warmup else ((w_opt.detach()).expand(-1, G.num_ws, -1) if not w_plus
                                                        else w_opt.detach())
            cam = pose_module()
            out_p = render(ws_d, cam)
            ploss = pcfg.pose_image_weight * image_loss(out_p["image"])[0] if pcfg.pose_image_weight else 0.0
            if use_warp:
                with torch.no_grad():
                    canon_feat = warp_fn(render(ws_d, canonical)["image"])
                wl = warp_loss(target_warp, canon_feat, out_p["image_depth"], cam, canonical)
                ploss = ploss + pcfg.warp_weight * wl
                rec["warp"] = float(wl.detach())
            if torch.is_tensor(ploss):
                ploss.backward()
                pose_optim.step()
        if bufs:
            normalize_noise(bufs)
        rec.update(step=step, loss=float(total.detach()), lr=lr)
        history.append(rec)
        if on_step is not None:
            on_step(step + 1, steps, rec)
    for b in bufs:
        b.requires_grad_(False)
    with torch.no_grad():
        final_cam = (pose_module() if posing else camera).detach()
        ws = (w_opt.expand(-1, G.num_ws, -1) if not w_plus else w_opt).detach().clone()
    return Projection(ws=ws, w=w_opt.detach().clone(), camera=final_cam, history=history,
                      seconds=time.perf_counter() - t0)
