"""Pixel reconstruction metrics on float images [B, C, H, W]: MSE, PSNR, SSIM and MS-SSIM (per image)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

#: MS-SSIM scale weights of Wang et al. (2003), as in pytorch-msssim.
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def to_unit(images: Tensor) -> Tensor:
    """uint8 [0, 255] -> float [0, 1]; float input is taken as [-1, 1] (generator output) and mapped to [0, 1]."""
    if images.dtype == torch.uint8:
        return images.float() / 255.0
    return ((images.float() + 1.0) / 2.0).clamp(0.0, 1.0)


def _check(x: Tensor, y: Tensor) -> None:
    if x.shape != y.shape or x.ndim != 4:
        raise ValueError(f"images must both be [B, C, H, W] of one shape, got {tuple(x.shape)} and {tuple(y.shape)}")


def _float(x: Tensor) -> Tensor:
    """Compute in the input's precision (float64 stays float64 for parity tests), at least float32."""
    return x if x.dtype == torch.float64 else x.float()


def mse(x: Tensor, y: Tensor) -> Tensor:  # [B, C, H, W] x2 -> [B]
    """Mean squared error per image, in the units of the inputs (square the range factor to convert: [-1, 1] = 4x)."""
    _check(x, y)
    return (_float(x) - _float(y)).square().flatten(1).mean(1)


def psnr(x: Tensor, y: Tensor, data_range: float = 1.0) -> Tensor:  # -> [B] dB
    """10 log10(data_range^2 / MSE) per image (inf for identical images)."""
    return 10.0 * torch.log10(data_range**2 / mse(x, y))


def gaussian_window(size: int = 11, sigma: float = 1.5) -> Tensor:  # [size] float64, sums to 1
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-coords.square() / (2 * sigma**2))
    return g / g.sum()


def _blur(x: Tensor, win: Tensor) -> Tensor:  # valid separable filtering, [B, C, H, W] -> [B, C, H-K+1, W-K+1]
    c, k = x.shape[1], win.numel()
    x = F.conv2d(x, win.view(1, 1, 1, k).expand(c, 1, 1, k), groups=c)
    return F.conv2d(x, win.view(1, 1, k, 1).expand(c, 1, k, 1), groups=c)


def _ssim_cs(x: Tensor, y: Tensor, data_range: float, win: Tensor,
             k: tuple[float, float] = (0.01, 0.03)) -> tuple[Tensor, Tensor]:  # -> ssim [B, C], cs [B, C]
    c1, c2 = (k[0] * data_range) ** 2, (k[1] * data_range) ** 2
    mu1, mu2 = _blur(x, win), _blur(y, win)
    s11 = _blur(x * x, win) - mu1.square()
    s22 = _blur(y * y, win) - mu2.square()
    s12 = _blur(x * y, win) - mu1 * mu2
    cs_map = (2 * s12 + c2) / (s11 + s22 + c2)
    ssim_map = (2 * mu1 * mu2 + c1) / (mu1.square() + mu2.square() + c1) * cs_map
    return ssim_map.flatten(2).mean(-1), cs_map.flatten(2).mean(-1)


def ssim(x: Tensor, y: Tensor, data_range: float = 1.0, win_size: int = 11, sigma: float = 1.5) -> Tensor:  # -> [B]
    """SSIM (Wang et al. 2004) per image: 11-tap Gaussian window (sigma 1.5), K = (0.01, 0.03), population
    statistics, averaged over the valid (unpadded) region and over channels -- scikit-image's
    `structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False)` and pytorch-msssim's `ssim`.
    """
    _check(x, y)
    if min(x.shape[-2:]) < win_size:
        raise ValueError(f"SSIM needs images of at least {win_size}x{win_size}, got {tuple(x.shape[-2:])}")
    x, y = _float(x), _float(y)
    s, _ = _ssim_cs(x, y, data_range, gaussian_window(win_size, sigma).to(x.device, x.dtype))
    return s.mean(1)


def ms_ssim_levels(size: int, win_size: int = 11) -> int:
    """Scales usable at this image size: 5 when the side exceeds (win_size - 1) * 16 (pytorch-msssim's requirement),
    else as many as keep the coarsest scale at least win_size pixels wide."""
    if size > (win_size - 1) * 2**4:
        return 5
    levels = 1
    while levels < 5 and size // 2**levels >= win_size:
        levels += 1
    return levels


def ms_ssim(x: Tensor, y: Tensor, data_range: float = 1.0, win_size: int = 11, sigma: float = 1.5,
            levels: int | None = None) -> Tensor:  # -> [B]
    """Multi-scale SSIM per image, as pytorch-msssim 1.0: contrast-structure terms (ReLU) at the first L-1 scales,
    SSIM (ReLU) at the last, weighted geometric mean with MS_SSIM_WEIGHTS, 2x2 average pooling (odd sides padded)
    between scales, mean over channels. With fewer than 5 scales (small images) the first L weights are renormalised
    to sum to 1 (pytorch-msssim refuses such images).
    """
    _check(x, y)
    levels = levels or ms_ssim_levels(min(x.shape[-2:]), win_size)
    x, y = _float(x), _float(y)
    weights = torch.tensor(MS_SSIM_WEIGHTS[:levels], dtype=x.dtype, device=x.device)
    weights = weights / weights.sum() if levels < 5 else weights
    win = gaussian_window(win_size, sigma).to(x.device, x.dtype)
    terms = []
    for i in range(levels):
        s, cs = _ssim_cs(x, y, data_range, win)
        if i < levels - 1:
            terms.append(torch.relu(cs))
            pad = [s_ % 2 for s_ in x.shape[2:]]
            x = F.avg_pool2d(x, kernel_size=2, padding=pad)
            y = F.avg_pool2d(y, kernel_size=2, padding=pad)
    terms.append(torch.relu(s))
    stacked = torch.stack(terms, 0)  # [L, B, C]
    return torch.prod(stacked ** weights.view(-1, 1, 1), dim=0).mean(1)


def resize(images: Tensor, size: int) -> Tensor:
    """Antialiased bilinear resize of float images to size x size (no-op when already that size)."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    return F.interpolate(images.float(), size=(size, size), mode="bilinear", align_corners=False, antialias=True)


def finite_mean(values: Tensor) -> float:
    """Mean of the finite entries (PSNR of identical images is inf); NaN if none."""
    v = values[torch.isfinite(values)]
    return float(v.mean()) if v.numel() else math.nan
