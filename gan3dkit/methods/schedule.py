"""EG3D's training fades as pure functions of images seen, so a resumed run continues them exactly."""

from __future__ import annotations

import math

import numpy as np


def fade_alpha(nimg: int, fade_kimg: float) -> float:
    """Linear ramp 0 -> 1 over `fade_kimg` thousand images (1 when fade_kimg <= 0)."""
    if fade_kimg <= 0:
        return 1.0
    return min(nimg / (fade_kimg * 1000.0), 1.0)


def neural_rendering_resolution(nimg: int, initial: int, final: int | None, fade_kimg: float) -> int:
    """NRR fading linearly from `initial` to `final` over `fade_kimg` kimg, rounded with rint (EG3D)."""
    if final is None:
        return initial
    a = fade_alpha(nimg, fade_kimg)
    return int(np.rint(initial * (1 - a) + final * a))


def blur_sigma(nimg: int, init_sigma: float, fade_kimg: float) -> float:
    """D-input blur sigma: init_sigma * max(1 - nimg / (fade_kimg * 1e3), 0); 0 when fade_kimg <= 0 (EG3D)."""
    if fade_kimg <= 0:
        return 0.0
    return max(1.0 - nimg / (fade_kimg * 1e3), 0.0) * init_sigma


def gpc_swap_prob(nimg: int, gen_pose_cond: bool, reg_prob: float, fade_kimg: float) -> float | None:
    """Probability of swapping the conditioning camera (EG3D GPC): 1 -> reg_prob over fade_kimg; None = GPC off."""
    if not gen_pose_cond:
        return None
    a = fade_alpha(nimg, fade_kimg)
    return (1 - a) * 1.0 + a * reg_prob


def ema_beta(nimg: int, batch: int, ema_kimg: float, ema_rampup: float | None) -> float:
    """EMA decay per step: 0.5 ** (batch / ema_nimg), ema_nimg = min(ema_kimg * 1e3, nimg * rampup) (EG3D)."""
    ema_nimg = ema_kimg * 1000.0
    if ema_rampup is not None:
        ema_nimg = min(ema_nimg, nimg * ema_rampup)
    return 0.5 ** (batch / max(ema_nimg, 1e-8))


def lazy_reg_adjust(lr: float, betas: tuple[float, float], interval: int | None) -> tuple[float, tuple[float, float]]:
    """StyleGAN2 lazy regularisation: scale lr by r = k / (k + 1) and betas to beta ** r for interval k."""
    if not interval:
        return lr, betas
    ratio = interval / (interval + 1)
    return lr * ratio, (betas[0] ** ratio, betas[1] ** ratio)


def gaussian_blur_kernel(sigma: float) -> np.ndarray | None:
    """1-D Gaussian taps exp2(-(x / sigma)^2) for x in [-floor(3 sigma), +floor(3 sigma)], normalised; None if empty."""
    size = math.floor(sigma * 3)
    if size <= 0:
        return None
    x = np.arange(-size, size + 1, dtype=np.float64) / sigma
    f = np.exp2(-(x**2))
    return (f / f.sum()).astype(np.float32)
