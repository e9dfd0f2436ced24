# SPDX-License-Identifier: Apache-2.0
"""Equalised-learning-rate building blocks: fully connected and conv layers, mapping network, minibatch std."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan3dkit.ops import bias_act, conv2d_resample, setup_filter
from gan3dkit.ops.bias_act import ACTIVATIONS

from .config import MappingConfig

#: StyleGAN2's FIR filter for every up/downsampling.
RESAMPLE_FILTER: tuple[int, ...] = (1, 3, 3, 1)


def normalize_2nd_moment(x: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """Scale ``x`` to unit mean square along ``dim``."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


def use_fp16(enabled: bool, reference: Tensor) -> bool:
    """Mixed-precision policy: fp16 only when asked for *and* running on CUDA (CPU is always fp32)."""
    return enabled and reference.device.type == "cuda"


def filtered_resizing(images: Tensor, size: int, mode: str = "antialiased") -> Tensor:  # [B, C, H, W] -> [B, C, s, s]
    """Resize images as EG3D's ``filtered_resizing``: bilinear (``align_corners=False``), antialiased by default.

    Args:
        images: Images ``[B, C, H, W]``.
        size: Output side.
        mode: ``"antialiased"`` (EG3D's default ``filter_mode``) or ``"none"`` (plain bilinear).

    Returns:
        Resized images ``[B, C, size, size]``.
    """
    if mode not in ("antialiased", "none"):
        raise ValueError(f"filtered_resizing: mode must be 'antialiased' or 'none', got {mode!r}.")
    if images.shape[-2:] == (size, size):
        return images
    return F.interpolate(
        images, size=(size, size), mode="bilinear", align_corners=False, antialias=mode == "antialiased"
    )


class FullyConnectedLayer(nn.Module):
    """Linear layer with equalised learning rate: stored weight ~ N(0, 1/lr^2), used as ``weight * lr / sqrt(in)``.

    The stored bias is ``bias_init / lr`` and is used as ``bias * lr`` (so the effective initial bias is
    ``bias_init``, as in EG3D's StyleGAN2 code). Gradients w.r.t. the stored tensors are scaled by the same gains,
    which is what makes a small ``lr_multiplier`` slow the layer down under Adam.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        activation: str = "linear",
        lr_multiplier: float = 1.0,
        bias_init: float = 0.0,
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"FullyConnectedLayer: unknown activation {activation!r}.")
        self.in_features, self.out_features, self.activation = in_features, out_features, activation
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init) / lr_multiplier)) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    @property
    def effective_weight(self) -> Tensor:  # [out, in]
        """The weight actually applied."""
        return self.weight * self.weight_gain

    def forward(self, x: Tensor) -> Tensor:  # [N, in] -> [N, out]
        w = self.weight.to(x.dtype) * self.weight_gain
        b = None if self.bias is None else self.bias.to(x.dtype) * self.bias_gain
        if self.activation == "linear" and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return bias_act(x.matmul(w.t()), b, act=self.activation)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, activation={self.activation}"


class Conv2dLayer(nn.Module):
    """Equalised-lr convolution with optional FIR up/downsampling, bias, activation and output clamp."""

    resample_filter: Tensor

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        bias: bool = True,
        activation: str = "linear",
        up: int = 1,
        down: int = 1,
        resample_filter: Sequence[int] = RESAMPLE_FILTER,
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.activation = in_channels, out_channels, activation
        self.up, self.down, self.conv_clamp = up, down, conv_clamp
        self.register_buffer("resample_filter", setup_filter(list(resample_filter)))
        self.padding = kernel_size // 2
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size**2)
        self.act_gain = ACTIVATIONS[activation].default_gain
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def forward(self, x: Tensor, gain: float = 1.0) -> Tensor:  # [N, C_in, H, W] -> [N, C_out, H*up/down, W*up/down]
        w = (self.weight * self.weight_gain).to(x.dtype)
        b = None if self.bias is None else self.bias.to(x.dtype)
        x = conv2d_resample(
            x, w, self.resample_filter, up=self.up, down=self.down, padding=self.padding, flip_weight=self.up == 1
        )
        clamp = None if self.conv_clamp is None else self.conv_clamp * gain
        return bias_act(x, b, act=self.activation, gain=self.act_gain * gain, clamp=clamp)

    def extra_repr(self) -> str:
        return (
            f"in_channels={self.in_channels}, out_channels={self.out_channels}, activation={self.activation}, "
            f"up={self.up}, down={self.down}"
        )


class MappingNetwork(nn.Module):
    """StyleGAN2 mapping: ``[normalize(z), normalize(embed(c))] -> num_layers FC -> w``, broadcast to ``num_ws``.

    ``w_avg`` (present when ``num_ws`` and ``w_avg_beta`` are set) tracks the mean w: with ``update_emas=True``,
    ``w_avg <- lerp(batch_mean(w), w_avg, beta)``. Truncation: ``w <- lerp(w_avg, w, psi)`` on all ws, or on the
    first ``truncation_cutoff`` ws.
    """

    w_avg: Tensor

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        num_ws: int | None,
        num_layers: int = 8,
        embed_features: int | None = None,
        layer_features: int | None = None,
        activation: str = "lrelu",
        lr_multiplier: float = 0.01,
        w_avg_beta: float | None = 0.998,
    ) -> None:
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.num_layers, self.w_avg_beta = num_layers, w_avg_beta
        embed_features = (w_dim if embed_features is None else embed_features) if c_dim > 0 else 0
        layer_features = w_dim if layer_features is None else layer_features
        features = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        for idx in range(num_layers):
            layer = FullyConnectedLayer(
                features[idx], features[idx + 1], activation=activation, lr_multiplier=lr_multiplier
            )
            setattr(self, f"fc{idx}", layer)
        if num_ws is not None and w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros(w_dim))

    @classmethod
    def from_config(cls, config: MappingConfig, num_ws: int | None) -> MappingNetwork:
        """Build from a ``MappingConfig``."""
        return cls(
            config.z_dim,
            config.c_dim,
            config.w_dim,
            num_ws,
            config.num_layers,
            config.embed_features,
            config.layer_features,
            config.activation,
            config.lr_multiplier,
            config.w_avg_beta,
        )

    def forward(
        self,
        z: Tensor | None,
        c: Tensor | None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        update_emas: bool = False,
    ) -> Tensor:  # [N, num_ws, w_dim], or [N, w_dim] when num_ws is None
        x = None
        if self.z_dim > 0:
            if z is None or z.ndim != 2 or z.shape[1] != self.z_dim:
                raise ValueError(
                    f"MappingNetwork: z must be [N, {self.z_dim}], got {None if z is None else tuple(z.shape)}."
                )
            x = normalize_2nd_moment(z.to(torch.float32))
        if self.c_dim > 0:
            if c is None or c.ndim != 2 or c.shape[1] != self.c_dim:
                raise ValueError(
                    f"MappingNetwork: c must be [N, {self.c_dim}], got {None if c is None else tuple(c.shape)}."
                )
            y = normalize_2nd_moment(self.embed(c.to(torch.float32)))
            x = y if x is None else torch.cat([x, y], dim=1)
        assert x is not None
        for idx in range(self.num_layers):
            x = getattr(self, f"fc{idx}")(x)
        if update_emas and hasattr(self, "w_avg"):
            assert self.w_avg_beta is not None
            self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        if self.num_ws is not None:
            x = x.unsqueeze(1).repeat(1, self.num_ws, 1)
        if truncation_psi != 1:
            if not hasattr(self, "w_avg"):
                raise ValueError("MappingNetwork: truncation needs w_avg (num_ws and w_avg_beta must be set).")
            if self.num_ws is None or truncation_cutoff is None:
                x = self.w_avg.lerp(x, truncation_psi)
            else:
                head = self.w_avg.lerp(x[:, :truncation_cutoff], truncation_psi)
                x = torch.cat([head, x[:, truncation_cutoff:]], dim=1)
        return x

    def extra_repr(self) -> str:
        return f"z_dim={self.z_dim}, c_dim={self.c_dim}, w_dim={self.w_dim}, num_ws={self.num_ws}"


class MinibatchStdLayer(nn.Module):
    """Append the mean (over features and pixels) of the per-group standard deviation as extra channels."""

    def __init__(self, group_size: int | None, num_channels: int = 1) -> None:
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x: Tensor) -> Tensor:  # [N, C, H, W] -> [N, C + num_channels, H, W]
        n, c, h, w = x.shape
        g = min(self.group_size, n) if self.group_size is not None else n
        f = self.num_channels
        if n % g != 0 or c % f != 0:
            raise ValueError(
                f"MinibatchStdLayer: batch {n} must be divisible by the group size {g} "
                f"(and channels {c} by {f}); set mbstd_group_size accordingly."
            )
        y = x.reshape(g, -1, f, c // f, h, w)  # [G, n, F, c, H, W]: sample i is in group i % n
        y = y - y.mean(dim=0)
        y = (y.square().mean(dim=0) + 1e-8).sqrt()  # [n, F, c, H, W]
        y = y.mean(dim=[2, 3, 4]).reshape(-1, f, 1, 1)  # [n, F, 1, 1]
        y = y.repeat(g, 1, h, w)  # [N, F, H, W]
        return torch.cat([x, y], dim=1)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}, num_channels={self.num_channels}"
