"""Inversion losses: differentiable LPIPS (with an honest record of which network ran), noise and depth regularisers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..metrics.perceptual import LPIPS
from ..metrics.weights import WeightsUnavailable


@dataclass
class PerceptualInfo:
    """What a perceptual loss really is: its name, whether the backbone is the published one, and why."""

    name: str
    calibrated: bool
    note: str = ""

    def to_dict(self) -> dict:
        return {"name": self.name, "calibrated": self.calibrated, "note": self.note}


class PerceptualLoss(nn.Module):
    """LPIPS v0.1 as a loss: sum over layers of spatial means of head-weighted squared unit-feature differences.

    For VGG this is the distance StyleGAN2-ADA / PTI's projector computes from NVIDIA's `vgg16.pt`
    (`(f_target - f_synth).square().sum()` of the LPIPS-normalised features). Inputs in [-1, 1]; images above
    `resolution` are area-downsampled first (PTI: 256). `net=None` is the pixel-only fallback: distance 0.
    """

    def __init__(self, lpips: LPIPS | None, info: PerceptualInfo, resolution: int = 256) -> None:
        super().__init__()
        self.lpips = lpips
        self.info = info
        self.resolution = resolution

    @property
    def available(self) -> bool:
        return self.lpips is not None

    def prepare(self, x: Tensor) -> Tensor:  # [B, 3, H, W] -> [B, 3, <=res, <=res]
        if x.shape[-1] > self.resolution:
            x = F.interpolate(x, size=(self.resolution, self.resolution), mode="area")
        return x

    def features(self, x: Tensor) -> list[Tensor]:
        """Unit-normalised LPIPS features of `x` (compute once for a fixed target)."""
        assert self.lpips is not None
        feats = self.lpips._feats(self.prepare(x.float()))
        return [f / (f.square().sum(1, keepdim=True).sqrt() + 1e-10) for f in feats]

    def distance(self, x: Tensor, y: Tensor | list[Tensor]) -> Tensor:  # -> [B], differentiable in x
        if self.lpips is None:
            return torch.zeros(x.shape[0], device=x.device)
        fy = self.features(y) if isinstance(y, Tensor) else y
        total = torch.zeros(x.shape[0], device=x.device)
        for a, b, w in zip(self.features(x), fy, self.lpips.heads, strict=False):
            total = total + F.conv2d((a - b).square(), w).mean(dim=(1, 2, 3))
        return total


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
