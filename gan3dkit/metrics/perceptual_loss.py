"""LPIPS v0.1 as a differentiable loss, one class for the inversion and the encoders' training."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .perceptual import LPIPS


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
    (`(f_target - f_synth).square().sum()` of the LPIPS-normalised features). Inputs in [-1, 1]. Images above
    `resolution` are area-downsampled first (PTI: 256; None: never); images under `small` px are bilinearly
    upsampled to 2 * `small` (the encoders: 32, as AlexNet's stride-4 conv and 3 pools need about 32 px; 0: never).
    `lpips=None` is the pixel-only fallback: distance 0 and `available` False.
    """

    def __init__(self, lpips: LPIPS | None, info: PerceptualInfo, resolution: int | None = None,
                 small: int = 0) -> None:  # fmt: skip
        super().__init__()
        self.lpips = lpips.requires_grad_(False).eval() if lpips is not None else None
        self.info = info
        self.resolution = resolution
        self.small = small

    @classmethod
    def load(cls, net: str = "alex", backbone: str | Path | None = None, random_backbone: bool = False,
             small: int = 32) -> PerceptualLoss:  # fmt: skip
        """LPIPS with its ImageNet backbone (a path/URL, or the package/cache/download chain; WeightsUnavailable
        when missing: no silent fallback), or a random backbone when asked for (then not calibrated, and said)."""
        lp = LPIPS(net, random_backbone=True) if random_backbone else LPIPS(net, backbone=backbone)
        return cls(lp, PerceptualInfo(lp.description, lp.calibrated, "RANDOM backbone: not LPIPS" if random_backbone
                                      else ""), small=small)  # fmt: skip

    @property
    def available(self) -> bool:
        return self.lpips is not None

    @property
    def calibrated(self) -> bool:
        return self.info.calibrated

    @property
    def description(self) -> str:
        return self.info.name

    def prepare(self, x: Tensor) -> Tensor:  # [B, 3, H, W] -> [B, 3, h, w]
        if self.resolution is not None and x.shape[-1] > self.resolution:
            x = F.interpolate(x, size=(self.resolution, self.resolution), mode="area")
        if x.shape[-1] < self.small:
            x = F.interpolate(x, size=(2 * self.small, 2 * self.small), mode="bilinear", align_corners=False)
        return x

    def features(self, x: Tensor) -> list[Tensor]:
        """Unit-normalised LPIPS features of `x` (compute once for a fixed target)."""
        if self.lpips is None:
            raise RuntimeError("no LPIPS network: check `available` first")
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

    def forward(self, x: Tensor, y: Tensor) -> Tensor:  # [B, 3, H, W] x2 in [-1, 1] -> scalar mean over the batch
        return self.distance(x, y).mean()
