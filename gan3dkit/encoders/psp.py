"""pSp's IR-SE body and GradualStyleEncoder (TriPlaneNet's W+ branch) and e4e's Encoder4Editing (Ko et al.'s E)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..metrics.identity import BottleneckIRSE
from ..networks.layers import FullyConnectedLayer


def irse_body(c_in: int, widths: tuple[int, ...], units: tuple[int, ...]) -> tuple[nn.Sequential, nn.Sequential]:
    """pSp's IR-SE body: ``input_layer`` (conv-BN-PReLU) and the flat ``body`` of units (names as model_ir_se50.pth)."""
    stem = nn.Sequential(
        nn.Conv2d(c_in, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.PReLU(widths[0])
    )
    layers, c = [], widths[0]
    for w, n in zip(widths, units, strict=False):
        layers += [BottleneckIRSE(c, w, 2), *[BottleneckIRSE(w, w, 1) for _ in range(n - 1)]]
        c = w
    return stem, nn.Sequential(*layers)


def stage_ends(units: tuple[int, ...]) -> list[int]:
    """Index of the last unit of each stage in the flat body (IR-SE-50: 2, 6, 20, 23)."""
    return [sum(units[: i + 1]) - 1 for i in range(len(units))]


class GradualStyleBlock(nn.Module):
    """pSp: stride-2 convs (LeakyReLU) down to 1x1, then an equalised-lr linear layer -> one style vector."""

    def __init__(self, c_in: int, c_out: int, spatial: int) -> None:
        super().__init__()
        n = max(1, int(math.log2(spatial)))
        layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 3, 2, 1), nn.LeakyReLU()]
        for _ in range(n - 1):
            layers += [nn.Conv2d(c_out, c_out, 3, 2, 1), nn.LeakyReLU()]
        self.convs = nn.Sequential(*layers)
        self.linear = FullyConnectedLayer(c_out, c_out)  # pSp's EqualLinear(lr_mul=1): same stored weights

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(F.adaptive_avg_pool2d(self.convs(x), 1).flatten(1))


class GradualStyleEncoder(nn.Module):
    """pSp ``GradualStyleEncoder``: IR-SE body, FPN (c3, p2, p1; bilinear, align_corners), styles 0-2 from c3,
    3-6 from p2, the rest from p1.

    ``e4e=True`` is e4e's ``Encoder4Editing`` (same modules and names): w_0 from style 0, broadcast to every layer,
    plus the progressive deltas w_i += style_i(features) for i >= 1 (all of them: ProgressiveStage.Inference).
    """

    def __init__(self, widths: tuple[int, ...], units: tuple[int, ...], num_ws: int, w_dim: int, res: int,
                 e4e: bool = False) -> None:  # fmt: skip
        super().__init__()
        self.e4e = e4e
        self.input_layer, self.body = irse_body(3, widths, units)
        self.ends = stage_ends(units)
        fpn = widths[-1]
        self.coarse, self.middle = min(3, num_ws), min(7, num_ws)
        spatial = [res // 16] * self.coarse + [res // 8] * (self.middle - self.coarse)
        spatial += [res // 4] * (num_ws - self.middle)
        self.styles = nn.ModuleList(GradualStyleBlock(fpn, w_dim, s) for s in spatial)
        self.latlayer1 = nn.Conv2d(widths[2], fpn, 1)
        self.latlayer2 = nn.Conv2d(widths[1], fpn, 1)
        self.out_channels = fpn

    def features(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:  # (c3, p2, p1)
        h, feats = self.input_layer(x), {}
        for i, unit in enumerate(self.body):
            h = unit(h)
            feats[i] = h
        c1, c2, c3 = (feats[i] for i in self.ends[1:])
        p2 = _upsample_add(c3, self.latlayer1(c2))
        return c3, p2, _upsample_add(p2, self.latlayer2(c1))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:  # -> (codes [B, num_ws, w_dim], c3 features)
        c3, p2, p1 = self.features(x)
        src = [c3] * self.coarse + [p2] * (self.middle - self.coarse) + [p1] * (len(self.styles) - self.middle)
        codes = torch.stack([blk(f) for blk, f in zip(self.styles, src, strict=False)], 1)
        if self.e4e:
            codes = torch.cat([codes[:, :1], codes[:, 1:] + codes[:, :1]], 1)
        return codes, c3


def _upsample_add(x: Tensor, y: Tensor) -> Tensor:
    return F.interpolate(x, size=y.shape[-2:], mode="bilinear", align_corners=True) + y
