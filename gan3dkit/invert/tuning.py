"""Pivotal tuning (PTI; Ko et al. stage 2 with raw-image loss and depth smoothness; optional locality regulariser)."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..cameras.camera import Cameras
from ..generate.views import view_cameras
from ..metrics.perceptual_loss import PerceptualLoss
from .config import TuneConfig
from .losses import depth_tv
from .projector import Renderer

if TYPE_CHECKING:
    from ..networks.generator import TriPlaneGenerator


def tune_generator(
    G: TriPlaneGenerator,
    ws: Tensor,  # [1, num_ws, w_dim] pivot
    camera: Cameras | Tensor,  # one fixed rendering camera
    target: Tensor,  # [1, 3, H, W] in [-1, 1]
    cfg: TuneConfig,
    perceptual: PerceptualLoss,
    *,
    deterministic: bool = True,
    nrr: int | None = None,
    seed: int = 0,
    on_step: Callable[[int, int, dict], None] | None = None,
) -> tuple[TriPlaneGenerator, list[dict], float]:
    """Adam on every generator parameter with the pivot and camera fixed; returns (tuned copy, history, seconds).

    Loss = l2 * MSE + lpips * LPIPS on the image ([-1, 1]); with `raw_weight` the same on `image_raw` against the
    area-downsampled target (Ko et al.); with `depth_tv_weight` Ko et al.'s depth smoothness; with `locality` PTI's
    regulariser (L2 + LPIPS between the tuned and the original G at w_r = w_p + alpha (w_z - w_p)/|w_z - w_p|,
    w_z ~ mapping(z, frontal camera, psi=0.5)). Stops early when a calibrated LPIPS reaches `lpips_threshold`.
    """
    t0 = time.perf_counter()
    tuned = copy.deepcopy(G).eval()
    for p in tuned.parameters():
        p.requires_grad_(True)
    params = [p for p in tuned.parameters()]
    opt = torch.optim.Adam(params, lr=cfg.lr, betas=(0.9, 0.999))
    render = Renderer(tuned, deterministic, nrr)
    base_render = Renderer(G, deterministic, nrr)
    feats = perceptual.features(target) if perceptual.available else None
    raw_target = None
    rng = np.random.RandomState(seed)
    cond = view_cameras(G, [0.0], 0.0, target.device).to_label()
    history: list[dict] = []
    ws = ws.detach()
    for step in range(cfg.steps):
        out = render(ws, camera)
        img = out["image"]
        mse = F.mse_loss(img, target)
        lp = perceptual.distance(img, feats).sum() if feats is not None else img.new_zeros(())
        rec = {"step": step, "mse": float(mse.detach()), "lpips": float(lp.detach())}
        if perceptual.info.calibrated and feats is not None and float(lp) <= cfg.lpips_threshold:
            rec["early_stop"] = True
            history.append(rec)
            break
        loss = cfg.l2_weight * mse + cfg.lpips_weight * lp
        if cfg.raw_weight > 0:
            raw = out["image_raw"]
            if raw_target is None:
                raw_target = F.interpolate(target, size=raw.shape[-2:], mode="area")
            raw_mse = F.mse_loss(raw, raw_target)
            raw_lp = perceptual.distance(raw, raw_target).sum() if feats is not None else raw.new_zeros(())
            loss = loss + cfg.raw_weight * (cfg.l2_weight * raw_mse + cfg.lpips_weight * raw_lp)
            rec["raw_mse"] = float(raw_mse.detach())
        if cfg.depth_tv_weight > 0:
            tv = depth_tv(out["image_depth"])
            loss = loss + cfg.depth_tv_weight * tv
            rec["depth_tv"] = float(tv.detach())
        if cfg.locality and step % cfg.locality_interval == 0:
            z = torch.from_numpy(rng.randn(1, G.z_dim)).float().to(target.device)
            with torch.no_grad():
                w_z = G.mapping(z, cond, truncation_psi=cfg.locality_psi)
                d = w_z - ws
                w_r = ws + cfg.locality_alpha * d / d.norm().clamp_min(1e-8)
                ref = base_render(w_r, camera)["image"]
            new = render(w_r, camera)["image"]
            reg = cfg.locality_l2 * F.mse_loss(new, ref)
            if feats is not None:
                reg = reg + cfg.locality_lpips * perceptual.distance(new, ref).sum()
            loss = loss + reg
            rec["locality"] = float(reg.detach())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        rec["loss"] = float(loss.detach())
        history.append(rec)
        if on_step is not None:
            on_step(step + 1, cfg.steps, rec)
    tuned.requires_grad_(False)
    return tuned, history, time.perf_counter() - t0
