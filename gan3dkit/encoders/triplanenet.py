"""TriPlaneNet v1/v2 (Bhattarai et al., WACV'24): pSp W+ branch + tri-plane offset U-Net (6 / 9 input channels)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import CameraModel, EncoderOutput, PoseHead
from .blocks import BottleneckIRSE, conv_prelu
from .render import teacher_render


@dataclass
class TriPlaneNetConfig:
    """Sizes and variant. Defaults: IR-SE-50 (units 3, 4, 14, 3) at 256² as in the paper; shrink for CPU tests.

    ``version`` 1: offset branch input [y_hat, x - y_hat] (6 ch); 2: + [x_mirror - y_hat_mirror] (9 ch), where
    y_hat_mirror is rendered at the yaw-mirrored camera. ``cascade_steps`` > 0 repeats the offset branch on the
    refined rendering (v1's CTTR). Skip features are the IR-SE stage outputs (the paper's layers 3, 7, 21, 22 are
    the last units of the four stages of IR-SE-50); the last 1x1 conv starts at zero so offsets start at 0.
    """

    version: int = 1
    input_resolution: int = 256
    triplane_resolution: int = 256
    triplane_channels: int = 32
    num_ws: int = 14
    w_dim: int = 512
    widths: tuple[int, int, int, int] = (64, 128, 256, 512)
    units: tuple[int, int, int, int] = (3, 4, 14, 3)
    offset_widths: tuple[int, int, int, int] = (64, 128, 256, 512)
    offset_units: tuple[int, int, int, int] = (3, 4, 14, 3)
    decoder_channels: int = 64
    """Width of the offset U-Net's decoder steps."""
    cascade_steps: int = 0
    pose_head: bool = True
    """Predict the input camera when none is given (gan3dkit addition, see ``PoseHead``)."""

    def validate(self) -> None:
        if self.version not in (1, 2):
            raise ValueError(f"TriPlaneNet version must be 1 or 2, got {self.version}")
        if self.input_resolution % 16:
            raise ValueError("TriPlaneNet input_resolution must be a multiple of 16")


def _irse_body(c_in: int, widths: tuple[int, ...], units: tuple[int, ...]) -> tuple[nn.Module, nn.ModuleList]:
    stem = nn.Sequential(nn.Conv2d(c_in, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.PReLU(widths[0]))
    stages, c = [], widths[0]
    for w, n in zip(widths, units):
        stages.append(nn.Sequential(BottleneckIRSE(c, w, 2), *[BottleneckIRSE(w, w, 1) for _ in range(n - 1)]))
        c = w
    return stem, nn.ModuleList(stages)


class GradualStyleBlock(nn.Module):
    """pSp: stride-2 convs (LeakyReLU) down to 1x1, then a linear layer -> one style vector."""

    def __init__(self, c_in: int, c_out: int, spatial: int) -> None:
        super().__init__()
        n = max(1, int(math.log2(spatial)))
        layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 3, 2, 1), nn.LeakyReLU()]
        for _ in range(n - 1):
            layers += [nn.Conv2d(c_out, c_out, 3, 2, 1), nn.LeakyReLU()]
        self.convs = nn.Sequential(*layers)
        self.linear = nn.Linear(c_out, c_out)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(F.adaptive_avg_pool2d(self.convs(x), 1).flatten(1))


class GradualStyleEncoder(nn.Module):
    """pSp ``GradualStyleEncoder``: IR-SE body, FPN (c3, p2, p1), styles 0-2 from c3, 3-6 from p2, the rest from p1."""

    def __init__(self, cfg: TriPlaneNetConfig) -> None:
        super().__init__()
        self.input_layer, self.body = _irse_body(3, cfg.widths, cfg.units)
        res = cfg.input_resolution
        fpn = cfg.widths[-1]
        self.latlayer1 = nn.Conv2d(cfg.widths[2], fpn, 1)
        self.latlayer2 = nn.Conv2d(cfg.widths[1], fpn, 1)
        self.coarse, self.middle = min(3, cfg.num_ws), min(7, cfg.num_ws)
        spatial = [res // 16] * self.coarse + [res // 8] * (self.middle - self.coarse)
        spatial += [res // 4] * (cfg.num_ws - self.middle)
        ins = [cfg.widths[-1]] * self.coarse + [fpn] * (cfg.num_ws - self.coarse)
        self.styles = nn.ModuleList(GradualStyleBlock(i, cfg.w_dim, s) for i, s in zip(ins, spatial))
        self.out_channels = cfg.widths[-1]

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:  # -> (codes [B, num_ws, w_dim], c3 features)
        h = self.input_layer(x)
        feats = []
        for stage in self.body:
            h = stage(h)
            feats.append(h)
        c1, c2, c3 = feats[1], feats[2], feats[3]
        p2 = F.interpolate(c3, size=c2.shape[-2:], mode="bilinear", align_corners=False) + self.latlayer1(c2)
        p1 = F.interpolate(p2, size=c1.shape[-2:], mode="bilinear", align_corners=False) + self.latlayer2(c1)
        src = [c3] * self.coarse + [p2] * (self.middle - self.coarse) + [p1] * (len(self.styles) - self.middle)
        return torch.stack([blk(f) for blk, f in zip(self.styles, src)], 1), c3


class OffsetUNet(nn.Module):
    """Tri-plane offset predictor: IR-SE encoder, nearest-upsample + concat + BN-conv-PReLU-conv-PReLU decoder; the
    last step concatenates the first-branch planes: conv-PReLU-conv-PReLU-1x1 -> offsets [B, 3C, R, R]."""

    def __init__(self, cfg: TriPlaneNetConfig, in_channels: int) -> None:
        super().__init__()
        self.input_layer, self.body = _irse_body(in_channels, cfg.offset_widths, cfg.offset_units)
        d = cfg.decoder_channels
        w = cfg.offset_widths
        skips = [w[2], w[1], w[0], w[0]]  # stage3 /8, stage2 /4, stage1 /2, stem /1
        c = w[3]
        self.up = nn.ModuleList()
        for s in skips:
            self.up.append(conv_prelu(c + s, d, bn=True))
            c = d
        pc = 3 * cfg.triplane_channels
        self.final = nn.Sequential(
            nn.Conv2d(d + pc, d, 3, 1, 1), nn.PReLU(d, 0.25), nn.Conv2d(d, d, 3, 1, 1), nn.PReLU(d, 0.25)
        )
        self.out = nn.Conv2d(d, pc, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.r = cfg.triplane_resolution

    def forward(self, x: Tensor, planes: Tensor) -> Tensor:  # x [B, in, H, W], planes [B, 3C, R, R] -> [B, 3C, R, R]
        h = self.input_layer(x)
        skips = [h]
        for stage in self.body:
            h = stage(h)
            skips.append(h)
        for blk, s in zip(self.up, reversed(skips[:-1])):
            h = blk(torch.cat([F.interpolate(h, size=s.shape[-2:], mode="nearest"), s], 1))
        h = F.interpolate(h, size=(self.r, self.r), mode="nearest") if h.shape[-1] != self.r else h
        return self.out(self.final(torch.cat([h, planes], 1)))


class TriPlaneNetEncoder(nn.Module):
    """``E(x [B, 3, H, W], camera [B, 25] | None) -> EncoderOutput(G.planes(w+) + offsets, w+, pose)``.

    The generator ``G`` is frozen and not part of this module's state dict. Without a camera the pose head's
    prediction is used (TriPlaneNet itself takes the camera from Deep3DFaceRecon preprocessing).
    """

    def __init__(self, cfg: TriPlaneNetConfig, G: nn.Module) -> None:
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self._G = [G]  # not registered: G's weights belong to the generator checkpoint
        self.camera_model = CameraModel.from_generator(G)
        self.psp = GradualStyleEncoder(cfg)
        self.offsets = OffsetUNet(cfg, 6 if cfg.version == 1 else 9)
        self.pose = PoseHead(self.psp.out_channels) if cfg.pose_head else None
        w_avg = getattr(G.backbone.mapping, "w_avg", None)
        self.register_buffer("latent_avg", (w_avg if w_avg is not None else torch.zeros(cfg.w_dim)).clone())
        self.nrr = int(G.neural_rendering_resolution)

    @property
    def G(self) -> nn.Module:
        return self._G[0]

    def _render(self, planes: Tensor, cams: Tensor, ws: Tensor, size: int) -> Tensor:
        img = teacher_render(self.G, planes, cams, ws, self.nrr)["image"]
        return F.interpolate(img, size=(size, size), mode="bilinear", antialias=True) if img.shape[-1] != size else img

    def forward(self, image: Tensor, camera: Tensor | None = None, use_offsets: bool = True) -> EncoderOutput:
        cfg, size = self.cfg, self.cfg.input_resolution
        x = image if image.shape[-1] == size else F.interpolate(image, size=(size, size), mode="bilinear", antialias=True)
        codes, c3 = self.psp(x)
        ws = codes + self.latent_avg.view(1, 1, -1)
        pose = self.pose(c3) if self.pose is not None else None
        if camera is None:
            if pose is None:
                raise ValueError("TriPlaneNet needs the input camera (this model has no pose head)")
            camera = self.camera_model.labels(pose)
        base = self.G.synthesize_planes(ws)  # [B, 3, C, R, R]
        if not use_offsets:
            return EncoderOutput(base, ws, pose, base)
        wd = ws.detach()  # TriPlaneNet detaches the codes before the offset branch
        planes = base.detach()
        b, r = planes.shape[0], cfg.triplane_resolution
        for _ in range(1 + cfg.cascade_steps):
            y_hat = self._render(planes, camera, wd, size)
            inp = [y_hat, x - y_hat]
            if cfg.version == 2:
                from ..cameras.camera import Cameras

                cam_m = Cameras.from_label(camera[:, :25]).mirror().to_label()
                inp.append(x.flip(-1) - self._render(planes, cam_m, wd, size))
            flat = planes.reshape(b, -1, r, r)
            planes = (flat + self.offsets(torch.cat(inp, 1), flat)).view_as(base)
        return EncoderOutput(planes, ws, pose, base)


class ConfidenceNet(nn.Module):
    """unsup3d-style ConfNet: 64x64 image -> per-pixel sigma > 0 (encoder-decoder, softplus), upsampled to the input.

    TriPlaneNet uses the pretrained unsup3d network (frozen, L_symm = mean(l2 / sigma), eq. 5); when no weights are
    given it is trained from scratch with the Laplacian likelihood of eq. 4 (the paper's stated alternative).
    """

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        w = width
        self.enc = nn.Sequential(
            nn.Conv2d(3, w, 4, 2, 1), nn.GroupNorm(4, w), nn.LeakyReLU(0.2),
            nn.Conv2d(w, 2 * w, 4, 2, 1), nn.GroupNorm(4, 2 * w), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * w, 4 * w, 4, 2, 1), nn.LeakyReLU(0.2),
        )  # fmt: skip
        self.dec = nn.Sequential(
            nn.ConvTranspose2d(4 * w, 2 * w, 4, 2, 1), nn.ReLU(),
            nn.ConvTranspose2d(2 * w, w, 4, 2, 1), nn.ReLU(),
            nn.ConvTranspose2d(w, 1, 4, 2, 1),
        )  # fmt: skip

    def forward(self, x: Tensor) -> Tensor:  # [B, 3, H, W] -> [B, 1, H, W]
        small = F.interpolate(x, size=(64, 64), mode="bilinear", antialias=True, align_corners=False)
        sigma = F.softplus(self.dec(self.enc(small))) + 1e-3
        return F.interpolate(sigma, size=x.shape[-2:], mode="bilinear", align_corners=False)
