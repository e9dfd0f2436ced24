"""LP3D (Trevithick et al., SIGGRAPH'23) image -> canonical tri-plane encoder, and its lightweight LT variant."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import EncoderOutput, InputPoseHead
from .blocks import ASPPNoBN, ResNetNoBN, ViTStage, pixel_coordinates


@dataclass
class LP3DConfig:
    """LP3D encoder sizes. Defaults follow the paper/unofficial code at 512² (DeepLabV3-ResNet34, 1024-d ViT).

    Choices where the sources are vague (methods.md §5): the backbone is smp DeepLabV3 with ``encoder_depth`` 3
    (stride 8); the low branch's ViT output is bilinearly resized to the tri-plane resolution before its conv; the
    high branch is a 7x7/2 conv + 4 convs (LeakyReLU 0.01) and is resized to the tri-plane resolution if needed;
    the fusion ViT (one block, 2 heads, sr 2) works on [L, E_high] and its output is concatenated with L again
    before the final convs. ``lt`` feeds E_high DeepLabV3's second-layer features instead of the image (A2).
    """

    input_resolution: int = 512
    """Encoder input size (the image is resized to it)."""
    triplane_resolution: int = 256
    """Output plane size R (must match the generator)."""
    triplane_channels: int = 32
    """Channels per plane C (must match the generator); the output is 3*C x R x R."""
    resnet_widths: tuple[int, ...] = (64, 128, 256, 512)
    """ResNet34 stage widths."""
    resnet_blocks: tuple[int, ...] = (3, 4, 6, 3)
    """ResNet34 blocks per stage."""
    encoder_depth: int = 3
    """smp encoder_depth (3: stem, layer1, layer2; output stride 8)."""
    deeplab_channels: int = 256
    """DeepLabV3 decoder (ASPP) channels."""
    aspp_rates: tuple[int, int, int] = (12, 24, 36)
    """ASPP atrous rates (smp default)."""
    low_vit_dim: int = 1024
    """Embedding width of the low-resolution ViT (unofficial code: 1024)."""
    low_vit_blocks: int = 5
    """Segformer blocks of the low ViT (unofficial: 5; LT: 2)."""
    low_vit_heads: int = 4
    low_vit_sr: int = 1
    mlp_ratio: float = 2.0
    high_channels: int = 96
    """Width of E_high."""
    fuse_vit_dim: int = 1024
    fuse_vit_blocks: int = 1
    fuse_vit_heads: int = 2
    fuse_vit_sr: int = 2
    lt: bool = False
    """LP3D-LT: E_high reads DeepLabV3's second-layer features instead of the raw image."""
    pose_head: bool = False
    """Predict the input camera (yaw, pitch, roll); a gan3dkit addition, see ``InputPoseHead``. Off by default: LP3D
    has no pose head or pose loss (seed 003: poses come from an off-the-shelf estimator); `encode` then uses the
    given camera or the frontal one, and says which."""

    def validate(self) -> None:
        if self.encoder_depth < 2 or self.encoder_depth - 1 > len(self.resnet_widths):
            raise ValueError(f"encoder_depth {self.encoder_depth} does not fit {len(self.resnet_widths)} stages")
        if len(self.resnet_blocks) != len(self.resnet_widths):
            raise ValueError("resnet_widths and resnet_blocks need the same length")
        if self.input_resolution % 16 or self.triplane_resolution % 2:
            raise ValueError("input_resolution must be a multiple of 16 and triplane_resolution even")


class LP3DEncoder(nn.Module):
    """``E(image [B, 3, H, W] in [-1, 1]) -> EncoderOutput(planes [B, 3, C, R, R], pose [B, 3])``."""

    def __init__(self, cfg: LP3DConfig) -> None:
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        out_ch = 3 * cfg.triplane_channels
        self.backbone = ResNetNoBN(5, cfg.resnet_widths, cfg.resnet_blocks, cfg.encoder_depth)
        self.deeplab = ASPPNoBN(self.backbone.out_channels, cfg.deeplab_channels, cfg.aspp_rates)
        self.low_vit = ViTStage(
            cfg.deeplab_channels, cfg.low_vit_dim, cfg.low_vit_blocks, cfg.low_vit_heads, cfg.mlp_ratio, cfg.low_vit_sr
        )
        self.low_conv = nn.Sequential(
            nn.Conv2d(self.low_vit.out_channels, out_ch, 3, 1, 1),
            nn.LeakyReLU(0.01),
            nn.Conv2d(out_ch, out_ch, 3, 1, 1),
        )
        high_in = cfg.resnet_widths[0] if cfg.lt else 5
        hc = cfg.high_channels

        def act() -> nn.Module:
            return nn.LeakyReLU(0.01)

        layers: list[nn.Module] = [nn.Conv2d(high_in, hc, 7, 1 if cfg.lt else 2, 3), act()]
        for _ in range(4):
            layers += [nn.Conv2d(hc, hc, 3, 1, 1), act()]
        self.high = nn.Sequential(*layers)
        self.fuse_in = nn.Sequential(nn.Conv2d(out_ch + hc, out_ch, 3, 1, 1), act())
        self.fuse_vit = ViTStage(
            out_ch, cfg.fuse_vit_dim, cfg.fuse_vit_blocks, cfg.fuse_vit_heads, cfg.mlp_ratio, cfg.fuse_vit_sr
        )
        self.head = nn.Sequential(
            nn.Conv2d(self.fuse_vit.out_channels + out_ch, out_ch, 3, 1, 1),
            act(),
            nn.Conv2d(out_ch, out_ch, 3, 1, 1),
            act(),
            nn.Conv2d(out_ch, out_ch, 3, 1, 1),
        )
        self.pose = InputPoseHead(cfg.deeplab_channels) if cfg.pose_head else None

    def transformer_parameters(self) -> list[nn.Parameter]:
        """Parameters of the ViT stages (LP3D trains them at lr 5e-5, the rest at 1e-4)."""
        return list(self.low_vit.parameters()) + list(self.fuse_vit.parameters())

    def forward(self, image: Tensor, camera: object = None) -> EncoderOutput:
        del camera  # LP3D is pose-free
        cfg, r = self.cfg, self.cfg.triplane_resolution
        size = (cfg.input_resolution, cfg.input_resolution)
        x = image if image.shape[-2:] == size else F.interpolate(image, size=size, mode="bilinear", antialias=True)
        x = pixel_coordinates(x)  # [B, 5, H, W]
        feats = self.backbone(x)
        deep = self.deeplab(feats[-1])  # [B, D, H/8, W/8]
        low = F.interpolate(self.low_vit(deep), size=(r, r), mode="bilinear", align_corners=False)
        low = self.low_conv(low)  # L: [B, 3C, R, R]
        high = self.high(feats[1] if cfg.lt else x)
        if high.shape[-1] != r:
            high = F.interpolate(high, size=(r, r), mode="bilinear", align_corners=False)
        fused = self.fuse_vit(self.fuse_in(torch.cat([low, high], 1)))  # [B, dim/4, R, R]
        planes = self.head(torch.cat([fused, low], 1))
        pose = self.pose(deep) if self.pose is not None else None
        return EncoderOutput(planes.view(planes.shape[0], 3, cfg.triplane_channels, r, r), None, pose)
