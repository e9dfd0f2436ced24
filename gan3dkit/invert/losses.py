"""Inversion losses: the LPIPS choice (with an honest record of which network ran), noise and depth regularisers."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..metrics.perceptual import LPIPS
from ..metrics.perceptual_loss import PerceptualInfo, PerceptualLoss
from ..metrics.weights import WeightsUnavailable


def build_perceptual(choice: str, default_net: str, backbone: str | Path | None = None,
                     resolution: int = 256) -> PerceptualLoss:
    """Resolve a `perceptual` choice ('auto', 'vgg-lpips', 'alex-lpips', 'random-vgg-lpips', 'none').

    'auto' is the paper's network for this use, `default_net` ('vgg' for the projector, 'alex' for tuning, as PTI),
    with its ImageNet backbone (user file, cache, download: `metrics.weights.fetch`). A missing file is a one-line
    WeightsUnavailable naming `gan3dkit weights add`, never a silent fallback: 'none' (pixel L2 only) and
    'random-vgg-lpips' (uncalibrated, said in every report) must be asked for.
    """
    if choice == "none":
        return PerceptualLoss(None, PerceptualInfo("none (pixel L2 only)", False, "requested"), resolution)
    if choice == "random-vgg-lpips":
        net = LPIPS("vgg", random_backbone=True)
        return PerceptualLoss(net, PerceptualInfo(net.description, False, "RANDOM backbone: not LPIPS"), resolution)
    net_name = {"vgg-lpips": "vgg", "alex-lpips": "alex"}.get(choice, default_net)
    try:
        net = LPIPS(net_name, backbone=backbone)
    except (WeightsUnavailable, FileNotFoundError, ValueError) as exc:
        reason = str(exc).split(". Options")[0].splitlines()[0]
        raise WeightsUnavailable(
            f"LPIPS-{net_name} ({choice}) needs its ImageNet backbone, which the paper uses pretrained: {reason}. Add "
            "the file with `gan3dkit weights add FILE` (see `gan3dkit weights list`), or choose explicitly: "
            "perceptual none (pixel L2) or random-vgg-lpips (uncalibrated)") from None
    return PerceptualLoss(net, PerceptualInfo(net.description, True), resolution)


def noise_regularizer(buffers: list[Tensor]) -> Tensor:
    """StyleGAN2 projector noise penalty: squared autocorrelation at shift 1 (x and y) over a pyramid down to 8x8."""
    reg = torch.zeros((), device=buffers[0].device if buffers else "cpu")
    for v in buffers:
        noise = v[None, None]
        while True:
            reg = reg + (noise * torch.roll(noise, shifts=1, dims=3)).mean() ** 2
            reg = reg + (noise * torch.roll(noise, shifts=1, dims=2)).mean() ** 2
            if noise.shape[2] <= 8:
                break
            noise = F.avg_pool2d(noise, kernel_size=2)
    return reg


@torch.no_grad()
def normalize_noise(buffers: list[Tensor]) -> None:
    """Zero mean, unit variance per buffer after every step (the projector's noise normalisation)."""
    for buf in buffers:
        buf -= buf.mean()
        buf *= buf.square().mean().rsqrt()


def depth_tv(depth: Tensor) -> Tensor:  # [B, 1, H, W] -> scalar
    """Ko et al.'s depth smoothness: mean((d[i, j] - d[i, j+1])^2 + (d[i, j] - d[i+1, j])^2)."""
    dx = depth[..., :-1, :-1] - depth[..., :-1, 1:]
    dy = depth[..., :-1, :-1] - depth[..., 1:, :-1]
    return (dx.square() + dy.square()).mean()


def noise_buffers(G: nn.Module) -> list[Tensor]:
    """The per-layer constant noise inputs (`noise_const`) of the backbone and the super-resolution."""
    return [b for name, b in G.named_buffers() if name.endswith("noise_const")]
