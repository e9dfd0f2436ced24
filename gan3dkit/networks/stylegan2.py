# SPDX-License-Identifier: Apache-2.0
"""StyleGAN2 synthesis ("skip" architecture): modulated conv layers, ToRGB, blocks, network and backbone."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from gan3dkit.ops import bias_act, modulated_conv2d, setup_filter, upsample2d
from gan3dkit.ops.bias_act import ACTIVATIONS

from .config import MappingConfig, SynthesisConfig
from .layers import RESAMPLE_FILTER, FullyConnectedLayer, MappingNetwork, use_fp16


def resolve_fused_modconv(mode: str | bool | None, default: str, training: bool) -> bool:
    """``"always"``/True -> fused, ``"never"``/False -> not, ``"inference_only"`` -> fused only in eval mode."""
    mode = default if mode is None else mode
    if isinstance(mode, bool):
        return mode
    if mode == "inference_only":
        return not training
    if mode not in ("always", "never"):
        raise ValueError(f"fused_modconv must be a bool, 'always', 'never' or 'inference_only', got {mode!r}.")
    return mode == "always"


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv (style from w, demodulation), optional 2x upsampling, noise, bias + lrelu, clamp."""

    resample_filter: Tensor
    noise_const: Tensor

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        kernel_size: int = 3,
        up: int = 1,
        use_noise: bool = True,
        activation: str = "lrelu",
        resample_filter: Sequence[int] = RESAMPLE_FILTER,
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.w_dim = in_channels, out_channels, w_dim
        self.resolution, self.up, self.use_noise = resolution, up, use_noise
        self.activation, self.conv_clamp = activation, conv_clamp
        self.register_buffer("resample_filter", setup_filter(list(resample_filter)))
        self.padding = kernel_size // 2
        self.act_gain = ACTIVATIONS[activation].default_gain
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        if use_noise:
            self.register_buffer("noise_const", torch.randn(resolution, resolution))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(
        self, x: Tensor, w: Tensor, noise_mode: str = "random", fused_modconv: bool = True, gain: float = 1.0
    ) -> Tensor:  # x [B, C_in, r/up, r/up], w [B, w_dim] -> [B, C_out, r, r]
        in_res = self.resolution // self.up
        if x.shape[1:] != (self.in_channels, in_res, in_res):
            raise ValueError(
                f"SynthesisLayer: expected x [B, {self.in_channels}, {in_res}, {in_res}], got {tuple(x.shape)}."
            )
        if noise_mode not in ("random", "const", "none"):
            raise ValueError(f"SynthesisLayer: noise_mode must be random|const|none, got {noise_mode!r}.")
        styles = self.affine(w)  # [B, C_in]
        noise = None
        if self.use_noise and noise_mode == "random":
            noise = torch.randn(x.shape[0], 1, self.resolution, self.resolution, device=x.device) * self.noise_strength
        elif self.use_noise and noise_mode == "const":
            noise = self.noise_const * self.noise_strength
        x = modulated_conv2d(
            x,
            self.weight,
            styles,
            noise=noise,
            up=self.up,
            padding=self.padding,
            resample_filter=self.resample_filter,
            flip_weight=self.up == 1,
            fused_modconv=fused_modconv,
        )
        clamp = None if self.conv_clamp is None else self.conv_clamp * gain
        return bias_act(x, self.bias.to(x.dtype), act=self.activation, gain=self.act_gain * gain, clamp=clamp)

    def extra_repr(self) -> str:
        return (
            f"in_channels={self.in_channels}, out_channels={self.out_channels}, resolution={self.resolution}, "
            f"up={self.up}"
        )


class ToRGBLayer(nn.Module):
    """Modulated 1x1 conv without demodulation to image channels, plus bias and clamp."""

    def __init__(
        self, in_channels: int, out_channels: int, w_dim: int, kernel_size: int = 1, conv_clamp: float | None = None
    ) -> None:
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size**2)

    def forward(self, x: Tensor, w: Tensor, fused_modconv: bool = True) -> Tensor:  # [B, C, r, r] -> [B, img_ch, r, r]
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False, fused_modconv=fused_modconv)
        return bias_act(x, self.bias.to(x.dtype), clamp=self.conv_clamp)


class SynthesisBlock(nn.Module):
    """One resolution of the "skip" generator: [const | conv0 (up)] + conv1, ToRGB added to the upsampled image.

    ``up=1`` gives EG3D's ``SynthesisBlockNoUp`` (same resolution in and out, image not upsampled). The block
    consumes ``num_conv + num_torgb`` ws; its ToRGB w is shared with the next block's first conv.
    """

    resample_filter: Tensor

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        img_channels: int,
        up: int = 2,
        use_fp16: bool = False,
        conv_clamp: float | None = None,
        use_noise: bool = True,
        fused_modconv_default: str = "inference_only",
        resample_filter: Sequence[int] = RESAMPLE_FILTER,
    ) -> None:
        super().__init__()
        if up not in (1, 2):
            raise ValueError(f"SynthesisBlock: up must be 1 or 2, got {up}.")
        self.in_channels, self.out_channels, self.w_dim = in_channels, out_channels, w_dim
        self.resolution, self.img_channels, self.up = resolution, img_channels, up
        self.use_fp16, self.fused_modconv_default = use_fp16, fused_modconv_default
        self.register_buffer("resample_filter", setup_filter(list(resample_filter)))
        layer_kwargs: dict[str, Any] = dict(
            w_dim=w_dim,
            resolution=resolution,
            use_noise=use_noise,
            conv_clamp=conv_clamp,
            resample_filter=resample_filter,
        )
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn(out_channels, resolution, resolution))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, up=up, **layer_kwargs)
        self.conv1 = SynthesisLayer(out_channels, out_channels, **layer_kwargs)
        self.torgb = ToRGBLayer(out_channels, img_channels, w_dim=w_dim, conv_clamp=conv_clamp)
        self.num_conv = 1 if in_channels == 0 else 2
        self.num_torgb = 1

    def forward(
        self,
        x: Tensor | None,
        img: Tensor | None,
        ws: Tensor,
        noise_mode: str = "random",
        fused_modconv: str | bool | None = None,
        force_fp32: bool = False,
    ) -> tuple[Tensor, Tensor]:  # ws [B, num_conv + 1, w_dim] -> x [B, C_out, r, r], img [B, img_ch, r, r] (fp32)
        if ws.ndim != 3 or ws.shape[1:] != (self.num_conv + self.num_torgb, self.w_dim):
            raise ValueError(
                f"SynthesisBlock: ws must be [B, {self.num_conv + self.num_torgb}, {self.w_dim}], "
                f"got {tuple(ws.shape)}."
            )
        w_iter = iter(ws.unbind(dim=1))
        dtype = torch.float16 if use_fp16(self.use_fp16 and not force_fp32, ws) else torch.float32
        fused = resolve_fused_modconv(fused_modconv, self.fused_modconv_default, self.training)
        in_res = self.resolution // self.up
        if self.in_channels == 0:
            x = self.const.to(dtype).unsqueeze(0).repeat(ws.shape[0], 1, 1, 1)
            x = self.conv1(x, next(w_iter), noise_mode, fused)
        else:
            if x is None or x.shape[1:] != (self.in_channels, in_res, in_res):
                raise ValueError(
                    f"SynthesisBlock: x must be [B, {self.in_channels}, {in_res}, {in_res}], "
                    f"got {None if x is None else tuple(x.shape)}."
                )
            x = x.to(dtype)
            x = self.conv0(x, next(w_iter), noise_mode, fused)
            x = self.conv1(x, next(w_iter), noise_mode, fused)
        if img is not None:
            if img.shape[1:] != (self.img_channels, in_res, in_res):
                raise ValueError(
                    f"SynthesisBlock: img must be [B, {self.img_channels}, {in_res}, {in_res}], got {tuple(img.shape)}."
                )
            if self.up > 1:
                img = upsample2d(img, self.resample_filter, up=self.up)
        y = self.torgb(x, next(w_iter), fused).to(torch.float32)
        img = y if img is None else img + y
        return x, img

    def extra_repr(self) -> str:
        return f"resolution={self.resolution}, up={self.up}, use_fp16={self.use_fp16}"


class SynthesisNetwork(nn.Module):
    """StyleGAN2 synthesis from a 4x4 constant to ``img_resolution``; ``num_ws`` = 2 log2(R) - 2."""

    def __init__(
        self,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        config: SynthesisConfig | None = None,
        num_fp16_res: int = 0,
    ) -> None:
        super().__init__()
        config = config or SynthesisConfig()
        log2 = int(math.log2(img_resolution))
        if img_resolution != 2**log2 or img_resolution < 4:
            raise ValueError(f"SynthesisNetwork: img_resolution must be a power of 2 >= 4, got {img_resolution}.")
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        self.block_resolutions = [2**i for i in range(2, log2 + 1)]
        channels = {r: min(config.channel_base // r, config.channel_max) for r in self.block_resolutions}
        fp16_resolution = max(2 ** (log2 + 1 - num_fp16_res), 8)
        self.noise_mode = config.noise_mode
        self.num_ws = 0
        for res in self.block_resolutions:
            block = SynthesisBlock(
                channels[res // 2] if res > 4 else 0,
                channels[res],
                w_dim,
                res,
                img_channels,
                use_fp16=res >= fp16_resolution,
                conv_clamp=config.conv_clamp,
                use_noise=config.use_noise,
                fused_modconv_default=config.fused_modconv,
            )
            self.num_ws += block.num_conv + (block.num_torgb if res == img_resolution else 0)
            setattr(self, f"b{res}", block)

    def forward(
        self,
        ws: Tensor,
        noise_mode: str | None = None,
        fused_modconv: str | bool | None = None,
        force_fp32: bool = False,
    ) -> Tensor:  # ws [B, num_ws, w_dim] -> [B, img_channels, R, R] fp32
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"SynthesisNetwork: ws must be [B, {self.num_ws}, {self.w_dim}], got {tuple(ws.shape)}.")
        ws = ws.to(torch.float32)
        noise_mode = self.noise_mode if noise_mode is None else noise_mode
        x = img = None
        w_idx = 0
        for res in self.block_resolutions:
            block: SynthesisBlock = getattr(self, f"b{res}")
            block_ws = ws.narrow(1, w_idx, block.num_conv + block.num_torgb)
            x, img = block(x, img, block_ws, noise_mode, fused_modconv, force_fp32)
            w_idx += block.num_conv
        assert img is not None
        return img


class StyleGAN2Backbone(nn.Module):
    """Mapping + synthesis (EG3D's ``backbone``: a StyleGAN2 generator whose image is the stacked tri-planes)."""

    def __init__(
        self,
        mapping: MappingConfig,
        synthesis: SynthesisConfig,
        img_resolution: int,
        img_channels: int,
        num_fp16_res: int = 0,
    ) -> None:
        super().__init__()
        self.synthesis = SynthesisNetwork(mapping.w_dim, img_resolution, img_channels, synthesis, num_fp16_res)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork.from_config(mapping, self.num_ws)

    def forward(
        self,
        z: Tensor,
        c: Tensor | None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        update_emas: bool = False,
        noise_mode: str | None = None,
    ) -> Tensor:  # [B, img_channels, R, R]
        ws = self.mapping(z, c, truncation_psi, truncation_cutoff, update_emas)
        return self.synthesis(ws, noise_mode=noise_mode)
