# SPDX-License-Identifier: Apache-2.0
"""EG3D's "hybrid" super-resolution: two StyleGAN2 synthesis blocks driven by the last w, from the feature image."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from gan3dkit.ops import setup_filter

from .config import SuperResConfig
from .layers import RESAMPLE_FILTER
from .stylegan2 import SynthesisBlock

#: Number of ws each SR block pair consumes (conv0, conv1, torgb), all set to the backbone's last w.
SR_NUM_WS = 3


class _HybridSuperResolution(nn.Module):
    """Resize (rgb, features) to ``input_resolution``, then ``block0`` and ``block1`` (skip connections on rgb)."""

    def __init__(
        self,
        channels: int,
        img_resolution: int,
        w_dim: int,
        config: SuperResConfig,
        input_resolution: int,
        block0_up: int,
    ) -> None:
        super().__init__()
        if input_resolution < 4 or input_resolution * (block0_up * 2) != img_resolution:
            raise ValueError(f"{type(self).__name__}: img_resolution {img_resolution} does not fit this module.")
        self.img_resolution, self.input_resolution, self.w_dim = img_resolution, input_resolution, w_dim
        self.noise_mode, self.antialias = config.noise_mode, config.antialias
        self.latent = config.latent
        use_fp16 = config.num_fp16_res > 0  # EG3D: every SR block is fp16 when sr_num_fp16_res > 0 (CUDA only here)
        clamp = config.conv_clamp
        c0, c1 = config.block_channels
        mid_res = input_resolution * block0_up
        self.block0 = SynthesisBlock(channels, c0, w_dim, mid_res, 3, up=block0_up, use_fp16=use_fp16, conv_clamp=clamp)
        self.block1 = SynthesisBlock(c0, c1, w_dim, img_resolution, 3, up=2, use_fp16=use_fp16, conv_clamp=clamp)

    def forward(
        self,
        rgb: Tensor,  # [B, 3, r, r] raw rendering
        x: Tensor,  # [B, C, r, r] feature image (rgb is its first 3 channels)
        ws: Tensor,  # [B, num_ws, w_dim]; only ws[:, -1] is used (only its batch size with latent "one")
        noise_mode: str | None = None,
        fused_modconv: str | bool | None = None,
    ) -> Tensor:  # [B, 3, img_resolution, img_resolution]
        noise_mode = self.noise_mode if noise_mode is None else noise_mode
        if self.latent == "one":  # LP3D: a constant 1 instead of the last w
            ws = ws.new_ones(ws.shape[0], SR_NUM_WS, self.w_dim)
        else:
            ws = ws[:, -1:, :].repeat(1, SR_NUM_WS, 1)
        if x.shape[-1] != self.input_resolution:
            size = (self.input_resolution, self.input_resolution)
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=self.antialias)
            rgb = F.interpolate(rgb, size=size, mode="bilinear", align_corners=False, antialias=self.antialias)
        x, rgb = self.block0(x, rgb, ws, noise_mode, fused_modconv)
        x, rgb = self.block1(x, rgb, ws, noise_mode, fused_modconv)
        return rgb


class SuperResolution2X(_HybridSuperResolution):
    """EG3D ``SuperresolutionHybrid2X`` (128² from a 64² rendering): input at img/2, a no-upsample block, a 2x block."""

    resample_filter: Tensor

    def __init__(self, channels: int, img_resolution: int, w_dim: int, config: SuperResConfig) -> None:
        super().__init__(channels, img_resolution, w_dim, config, img_resolution // 2, block0_up=1)
        self.register_buffer("resample_filter", setup_filter(list(RESAMPLE_FILTER)))  # unused; EG3D has it too


class SuperResolution4X(SuperResolution2X):
    """EG3D ``SuperresolutionHybrid4X`` (256²): same structure as 2X; the 64² rendering is first resized to 128²."""


class SuperResolution8XDC(_HybridSuperResolution):
    """EG3D ``SuperresolutionHybrid8XDC`` (512²): rendering resized to img/4 (128²), then two 2x blocks."""

    def __init__(self, channels: int, img_resolution: int, w_dim: int, config: SuperResConfig) -> None:
        super().__init__(channels, img_resolution, w_dim, config, img_resolution // 4, block0_up=2)


class NoSuperResolution(nn.Module):
    """No SR: the output image is the raw rendering, bilinearly resized to ``img_resolution`` if needed."""

    def __init__(self, channels: int, img_resolution: int, w_dim: int, config: SuperResConfig) -> None:
        super().__init__()
        self.img_resolution, self.antialias = img_resolution, config.antialias

    def forward(
        self, rgb: Tensor, x: Tensor, ws: Tensor, noise_mode: str | None = None, fused_modconv: str | bool | None = None
    ) -> Tensor:  # [B, 3, R, R]
        if rgb.shape[-1] == self.img_resolution:
            return rgb
        size = (self.img_resolution, self.img_resolution)
        return F.interpolate(rgb, size=size, mode="bilinear", align_corners=False, antialias=self.antialias)


_SR_CLASSES: dict[str, type[nn.Module]] = {
    "2x": SuperResolution2X,
    "4x": SuperResolution4X,
    "8xdc": SuperResolution8XDC,
    "none": NoSuperResolution,
}


def build_superresolution(config: SuperResConfig, channels: int, img_resolution: int, w_dim: int) -> nn.Module:
    """The SR module named by ``config.kind``.

    Args:
        config: Super-resolution settings.
        channels: Channels of the feature image (the decoder's output dim).
        img_resolution: Output resolution.
        w_dim: Width of w.

    Returns:
        A module called as ``sr(rgb, features, ws, noise_mode=None, fused_modconv=None) -> [B, 3, R, R]``.
    """
    return _SR_CLASSES[config.kind](channels, img_resolution, w_dim, config)
