"""Encoder building blocks: pixel-coordinate channels, BN-free ResNet/DeepLabV3, Segformer attention."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def pixel_coordinates(x: Tensor) -> Tensor:  # [B, C, H, W] -> [B, C + 2, H, W]
    """Append (u, v) pixel-centre coordinates normalised to [-1, 1] (LP3D's 5-channel input).

    The unofficial LP3D code appends raw integers 0..511 (methods.md §5.2, likely a bug); the coordinates here are
    ``(i + 0.5) / N * 2 - 1`` for column i (u) and row j (v).
    """
    b, _, h, w = x.shape
    v = (torch.arange(h, device=x.device, dtype=x.dtype) + 0.5) / h * 2 - 1
    u = (torch.arange(w, device=x.device, dtype=x.dtype) + 0.5) / w * 2 - 1
    vv, uu = torch.meshgrid(v, u, indexing="ij")
    return torch.cat([x, uu.expand(b, 1, h, w), vv.expand(b, 1, h, w)], dim=1)


class BasicBlockNoBN(nn.Module):
    """ResNet basic block with every batch norm removed and the conv biases reintroduced (LP3D supplement A2)."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=True)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=True)
        self.downsample = nn.Conv2d(c_in, c_out, 1, stride, bias=True) if stride != 1 or c_in != c_out else None

    def forward(self, x: Tensor) -> Tensor:
        idt = x if self.downsample is None else self.downsample(x)
        return F.relu(self.conv2(F.relu(self.conv1(x))) + idt)


class ResNetNoBN(nn.Module):
    """ResNet34-style encoder without BN (torchvision names: conv1, layer1..layerK) on a 5-channel input.

    ``widths``/``blocks`` give the stages (ResNet34: (64, 128, 256, 512), (3, 4, 6, 3)); ``depth`` stages are built
    (smp ``encoder_depth`` 3 = stem + layer1 + layer2, output stride 8). ``forward`` returns every stage output.
    """

    def __init__(self, in_channels: int, widths: tuple[int, ...], blocks: tuple[int, ...], depth: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, widths[0], 7, 2, 3, bias=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.stages = depth - 1
        c = widths[0]
        for i in range(self.stages):
            layers = [BasicBlockNoBN(c, widths[i], 1 if i == 0 else 2)]
            layers += [BasicBlockNoBN(widths[i], widths[i]) for _ in range(blocks[i] - 1)]
            self.add_module(f"layer{i + 1}", nn.Sequential(*layers))
            c = widths[i]
        self.out_channels = c

    def forward(self, x: Tensor) -> list[Tensor]:  # -> [stem /2, layer1 /4, layer2 /8, ...]
        feats = [F.relu(self.conv1(x))]
        h = self.maxpool(feats[0])
        for i in range(self.stages):
            h = getattr(self, f"layer{i + 1}")(h)
            feats.append(h)
        return feats


class ASPPNoBN(nn.Module):
    """DeepLabV3 decoder (smp): ASPP (1x1, three atrous 3x3, image pooling) -> 1x1 project -> 3x3 conv, no BN."""

    def __init__(self, c_in: int, c_out: int, rates: tuple[int, int, int] = (12, 24, 36)) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            [nn.Conv2d(c_in, c_out, 1)] + [nn.Conv2d(c_in, c_out, 3, padding=r, dilation=r) for r in rates]
        )
        self.pool = nn.Conv2d(c_in, c_out, 1)
        self.project = nn.Conv2d(c_out * (len(rates) + 2), c_out, 1)
        self.conv = nn.Conv2d(c_out, c_out, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:  # [B, c_in, h, w] -> [B, c_out, h, w]
        outs = [F.relu(b(x)) for b in self.branches]
        pooled = F.relu(self.pool(F.adaptive_avg_pool2d(x, 1)))
        outs.append(pooled.expand(-1, -1, x.shape[-2], x.shape[-1]))
        return F.relu(self.conv(F.relu(self.project(torch.cat(outs, 1)))))


class OverlapPatchEmbed(nn.Module):
    """Segformer patch embedding: conv (kernel ``patch``, stride, padding patch // 2) + LayerNorm -> tokens."""

    def __init__(self, c_in: int, dim: int, patch: int = 3, stride: int = 2) -> None:
        super().__init__()
        self.proj = nn.Conv2d(c_in, dim, patch, stride, patch // 2)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> tuple[Tensor, int, int]:  # [B, C, H, W] -> ([B, h*w, dim], h, w)
        x = self.proj(x)
        h, w = x.shape[-2:]
        return self.norm(x.flatten(2).transpose(1, 2)), h, w


class EfficientSelfAttention(nn.Module):
    """Segformer attention with spatial reduction ``sr`` of keys/values (no dropout; q/kv biases optional: smp's
    ``mix_transformer`` has none, ``qkv_bias=False``)."""

    def __init__(self, dim: int, heads: int, sr: int = 1, qkv_bias: bool = True) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"attention dim {dim} is not divisible by {heads} heads")
        self.heads, self.scale = heads, (dim // heads) ** -0.5
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(dim, 2 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.sr = nn.Conv2d(dim, dim, sr, sr) if sr > 1 else None
        self.norm = nn.LayerNorm(dim) if sr > 1 else None

    def forward(self, x: Tensor, h: int, w: int) -> Tensor:  # [B, N, dim]
        b, n, c = x.shape
        q = self.q(x).reshape(b, n, self.heads, c // self.heads).transpose(1, 2)
        kv_in = x
        if self.sr is not None:
            assert self.norm is not None  # built together with self.sr
            kv_in = self.norm(self.sr(x.transpose(1, 2).reshape(b, c, h, w)).flatten(2).transpose(1, 2))
        k, v = self.kv(kv_in).reshape(b, -1, 2, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)  # softmax(q k^T / sqrt(d)) v
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class MixFFN(nn.Module):
    """Segformer Mix-FFN: fc -> 3x3 depth-wise conv -> GELU -> fc."""

    def __init__(self, dim: int, ratio: float) -> None:
        super().__init__()
        hidden = int(dim * ratio)
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)
        self.dwconv = nn.Conv2d(hidden, hidden, 3, 1, 1, groups=hidden)

    def forward(self, x: Tensor, h: int, w: int) -> Tensor:
        b, n, _ = x.shape
        y = self.fc1(x)
        y = self.dwconv(y.transpose(1, 2).reshape(b, -1, h, w)).flatten(2).transpose(1, 2)
        return self.fc2(F.gelu(y))


class SegformerBlock(nn.Module):
    """Pre-norm Segformer block: x + attn(LN(x)), x + MixFFN(LN(x)); no dropout or drop-path (LP3D A2)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 2.0, sr: int = 1, qkv_bias: bool = True) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = EfficientSelfAttention(dim, heads, sr, qkv_bias)
        self.mlp = MixFFN(dim, mlp_ratio)

    def forward(self, x: Tensor, h: int, w: int) -> Tensor:
        x = x + self.attn(self.norm1(x), h, w)
        return x + self.mlp(self.norm2(x), h, w)


class ViTStage(nn.Module):
    """OverlapPatchEmbed (stride 2) -> N Segformer blocks -> LayerNorm -> feature map -> PixelShuffle(2).

    [B, c_in, H, W] -> [B, dim / 4, H, W] (same size as the input when H, W are even).
    """

    def __init__(self, c_in: int, dim: int, depth: int, heads: int, mlp_ratio: float, sr: int) -> None:
        super().__init__()
        if dim % 4:
            raise ValueError(f"ViT dim {dim} must be divisible by 4 (PixelShuffle x2)")
        self.embed = OverlapPatchEmbed(c_in, dim, 3, 2)
        self.blocks = nn.ModuleList(SegformerBlock(dim, heads, mlp_ratio, sr) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.shuffle = nn.PixelShuffle(2)
        self.out_channels = dim // 4

    def forward(self, x: Tensor) -> Tensor:
        t, h, w = self.embed(x)
        for blk in self.blocks:
            t = blk(t, h, w)
        t = self.norm(t).transpose(1, 2).reshape(x.shape[0], -1, h, w)
        return self.shuffle(t)
