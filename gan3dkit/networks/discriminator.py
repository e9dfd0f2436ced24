# SPDX-License-Identifier: Apache-2.0
"""EG3D's dual discriminator: a camera-conditioned StyleGAN2 residual D on the image and the upsampled raw image."""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from gan3dkit.ops import setup_filter

from .config import DiscriminatorConfig
from .layers import (
    RESAMPLE_FILTER,
    Conv2dLayer,
    FullyConnectedLayer,
    MappingNetwork,
    MinibatchStdLayer,
    filtered_resizing,
    use_fp16,
)

_SQRT_HALF = math.sqrt(0.5)


class DiscriminatorBlock(nn.Module):
    """Residual block: [fromrgb] -> conv0 -> conv1 (down 2), plus a 1x1 down-2 skip; branches scaled by sqrt(1/2)."""

    resample_filter: Tensor

    def __init__(
        self,
        in_channels: int,
        tmp_channels: int,
        out_channels: int,
        resolution: int,
        img_channels: int,
        use_fp16: bool = False,
        conv_clamp: float | None = None,
        activation: str = "lrelu",
    ) -> None:
        super().__init__()
        self.in_channels, self.resolution, self.img_channels, self.use_fp16 = (
            in_channels,
            resolution,
            img_channels,
            use_fp16,
        )
        self.register_buffer("resample_filter", setup_filter(list(RESAMPLE_FILTER)))
        if in_channels == 0:
            self.fromrgb = Conv2dLayer(img_channels, tmp_channels, 1, activation=activation, conv_clamp=conv_clamp)
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, 3, activation=activation, conv_clamp=conv_clamp)
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, 3, activation=activation, down=2, conv_clamp=conv_clamp)
        self.skip = Conv2dLayer(tmp_channels, out_channels, 1, bias=False, down=2)

    def forward(self, x: Tensor | None, img: Tensor | None, force_fp32: bool = False) -> tuple[Tensor, None]:
        # x [B, in, r, r] (or img [B, img_ch, r, r] for the first block) -> [B, out, r/2, r/2]
        ref = img if x is None else x
        assert ref is not None
        dtype = torch.float16 if use_fp16(self.use_fp16 and not force_fp32, ref) else torch.float32
        if self.in_channels == 0:
            if img is None or img.shape[1:] != (self.img_channels, self.resolution, self.resolution):
                raise ValueError(
                    f"DiscriminatorBlock: img must be [B, {self.img_channels}, {self.resolution}, "
                    f"{self.resolution}], got {None if img is None else tuple(img.shape)}."
                )
            y = self.fromrgb(img.to(dtype))
            x = y if x is None else x + y
        assert x is not None
        x = x.to(dtype)
        y = self.skip(x, gain=_SQRT_HALF)
        x = self.conv0(x)
        x = self.conv1(x, gain=_SQRT_HALF)
        return y + x, None


class DiscriminatorEpilogue(nn.Module):
    """4x4 head (fp32): minibatch std -> conv -> FC -> out, projected onto the camera embedding ``cmap``."""

    def __init__(
        self,
        in_channels: int,
        cmap_dim: int,
        resolution: int = 4,
        mbstd_group_size: int = 4,
        mbstd_num_channels: int = 1,
        activation: str = "lrelu",
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__()
        self.in_channels, self.cmap_dim, self.resolution = in_channels, cmap_dim, resolution
        self.mbstd = MinibatchStdLayer(mbstd_group_size, mbstd_num_channels) if mbstd_num_channels > 0 else None
        self.conv = Conv2dLayer(
            in_channels + mbstd_num_channels, in_channels, 3, activation=activation, conv_clamp=conv_clamp
        )
        self.fc = FullyConnectedLayer(in_channels * resolution**2, in_channels, activation=activation)
        self.out = FullyConnectedLayer(in_channels, 1 if cmap_dim == 0 else cmap_dim)

    def features(self, x: Tensor) -> Tensor:  # x [B, C, 4, 4] -> [B, C * 16] (fp32, after mbstd and conv)
        """The flattened 4x4 features the logit head reads (pose-free methods attach their pose heads here)."""
        x = x.to(torch.float32)
        if self.mbstd is not None:
            x = self.mbstd(x)
        return self.conv(x).flatten(1)

    def forward(self, x: Tensor, cmap: Tensor | None) -> Tensor:  # x [B, C, 4, 4], cmap [B, cmap_dim] -> [B, 1]
        return self.head(self.features(x), cmap)

    def head(self, feat: Tensor, cmap: Tensor | None) -> Tensor:  # feat [B, C * 16] -> logits [B, 1]
        x = self.out(self.fc(feat))
        if self.cmap_dim > 0:
            assert cmap is not None
            x = (x * cmap).sum(dim=1, keepdim=True) * (1.0 / math.sqrt(self.cmap_dim))
        return x


class DualDiscriminator(nn.Module):
    """``D({"image", "image_raw"}, c) -> logits [B, 1]``.

    With ``config.dual`` the raw rendering is resized to the image resolution (antialiased bilinear, EG3D's
    ``filtered_resizing``) and concatenated: 6 input channels. Blocks at the ``num_fp16_res`` highest resolutions
    run in fp16 on CUDA. Twice differentiable, for R1 on both inputs.
    """

    resample_filter: Tensor

    def __init__(self, config: DiscriminatorConfig) -> None:
        super().__init__()
        self.config = copy.deepcopy(config)
        cfg = self.config
        self.img_resolution, self.c_dim = cfg.img_resolution, cfg.c_dim
        log2 = int(math.log2(cfg.img_resolution))
        self.block_resolutions = [2**i for i in range(log2, 2, -1)]
        channels = {r: min(cfg.channel_base // r, cfg.channel_max) for r in self.block_resolutions + [4]}
        fp16_resolution = max(2 ** (log2 + 1 - cfg.num_fp16_res), 8)
        self.cmap_dim = cfg.resolved_cmap_dim
        in_img_channels = cfg.img_channels * (2 if cfg.dual else 1)
        for res in self.block_resolutions:
            block = DiscriminatorBlock(
                channels[res] if res < cfg.img_resolution else 0,
                channels[res],
                channels[res // 2],
                res,
                in_img_channels,
                use_fp16=res >= fp16_resolution,
                conv_clamp=cfg.conv_clamp,
            )
            setattr(self, f"b{res}", block)
        if cfg.c_dim > 0:
            self.mapping = MappingNetwork(
                0,
                cfg.c_dim,
                self.cmap_dim,
                num_ws=None,
                num_layers=cfg.mapping_layers,
                lr_multiplier=cfg.mapping_lr_multiplier,
                w_avg_beta=None,
            )
        self.b4 = DiscriminatorEpilogue(
            channels[4], self.cmap_dim, 4, cfg.mbstd_group_size, cfg.mbstd_num_channels, conv_clamp=cfg.conv_clamp
        )
        self.register_buffer("resample_filter", setup_filter(list(RESAMPLE_FILTER)))

    def prepare_input(self, img: Mapping[str, Tensor] | Tensor) -> Tensor:  # -> [B, 3 or 6, R, R]
        """Concatenate ``image`` and the resized ``image_raw`` (dual) or return the image alone."""
        if not self.config.dual:
            return img if isinstance(img, Tensor) else img["image"]
        if isinstance(img, Tensor) or "image_raw" not in img:
            raise ValueError("DualDiscriminator: dual=True needs a dict with 'image' and 'image_raw'.")
        image = img["image"]
        raw = filtered_resizing(img["image_raw"], image.shape[-1], self.config.raw_resize_mode)
        return torch.cat([image, raw], dim=1)

    def forward(self, img: Mapping[str, Tensor] | Tensor, c: Tensor | None, update_emas: bool = False) -> Tensor:
        """Logits ``[B, 1]`` for ``{"image": [B,3,R,R], "image_raw": [B,3,r,r]}`` and camera labels ``c [B, 25]``."""
        del update_emas
        return self.b4.head(self.features(img), self.camera_embedding(c))

    def features(self, img: Mapping[str, Tensor] | Tensor) -> Tensor:  # -> [B, C4 * 16]
        """The residual trunk and the epilogue's mbstd + conv: the 4x4 features, flattened."""
        x_img = self.prepare_input(img)
        if x_img.shape[-1] != self.img_resolution:
            raise ValueError(f"DualDiscriminator: image must be {self.img_resolution}², got {tuple(x_img.shape)}.")
        x: Tensor | None = None
        for res in self.block_resolutions:
            x, _ = getattr(self, f"b{res}")(x, x_img if x is None else None)
        assert x is not None
        return self.b4.features(x)

    def camera_embedding(self, c: Tensor | None) -> Tensor | None:  # c [B, 25] -> cmap [B, cmap_dim] (None: c_dim 0)
        cmap = None
        if self.c_dim > 0:
            if c is None:
                raise ValueError("DualDiscriminator: c is required when c_dim > 0.")
            c = c[:, : self.c_dim]
            if self.config.disc_c_noise > 0 and c.shape[0] > 1:
                c = c + torch.randn_like(c) * c.std(dim=0) * self.config.disc_c_noise
            cmap = self.mapping(None, c)
        return cmap
