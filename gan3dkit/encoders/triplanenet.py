"""TriPlaneNet v1/v2 (Bhattarai et al., WACV'24) as released: pSp W+ branch + tri-plane offset U-Net (6/9 channels)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..cameras.camera import Cameras, as_cameras
from .base import CameraModel, EncoderOutput, InputPoseHead
from .psp import GradualStyleEncoder, irse_body, stage_ends

if TYPE_CHECKING:
    from ..networks.generator import TriPlaneGenerator


@dataclass
class TriPlaneNetConfig:
    """Sizes and variant. Defaults: the released networks (anantarb/triplanenet): IR-SE-50 (units 3, 4, 14, 3) at
    256² for both branches; shrink for CPU tests.

    ``version`` 1: offset branch input [y_hat, x - y_hat] (6 ch), offsets added to G's planes; 2: + [x_mirror -
    y_hat_mirror] (9 ch, y_hat_mirror rendered at the yaw-mirrored camera) and the head also reads G's planes.
    U-Net skips are the outputs of the last unit of stages 1-3 and of the first unit of stage 4 (body units 2, 6,
    20 and 21 of IR-SE-50, as the public ``TriPlane_Encoder`` taps them).
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
    decoder_widths: tuple[int, int, int, int] = (512, 384, 256, 96)
    """Outputs of the U-Net's four up steps (v2 with ``upsample: nearest``: 512, 256, 128, 64)."""
    head_channels: int = 96
    """Width of the final head (conv-PReLU-conv-PReLU-1x1)."""
    upsample: str = "pixelshuffle"
    """U-Net upsampling: "pixelshuffle" (v1; v2 with --use_pixelshuffle) or "nearest" (v2's default)."""
    resize: str = "area"
    """How renders reach the input size: "area" (the public code's adaptive average pool) or "bilinear"."""
    cascade_steps: int = 0
    """v1's CTTR: recompute the offsets this many more times from the rendering with offsets."""
    zero_init_head: bool = True
    """gan3dkit choice: the last 1x1 conv starts at zero so training starts from G(w+) (public code: default init)."""
    pose_head: bool = True
    """Predict the input camera when none is given (a gan3dkit addition, ``InputPoseHead``; off in converted files)."""

    def validate(self) -> None:
        if self.version not in (1, 2):
            raise ValueError(f"TriPlaneNet version must be 1 or 2, got {self.version}")
        if self.input_resolution % 16:
            raise ValueError("TriPlaneNet input_resolution must be a multiple of 16")
        if self.upsample not in ("pixelshuffle", "nearest") or self.resize not in ("area", "bilinear"):
            raise ValueError(f"TriPlaneNet upsample/resize: got {self.upsample!r}/{self.resize!r}")
        if self.upsample == "pixelshuffle" and any(c % 4 for c in self.decoder_widths):
            raise ValueError(f"pixel-shuffle decoder widths must be multiples of 4, got {self.decoder_widths}")


def double_conv(c_in: int, c_out: int) -> nn.Sequential:
    """The U-Net step's BN -> conv -> PReLU -> conv -> PReLU -> PReLU (two PReLUs in a row, as released)."""
    return nn.Sequential(nn.BatchNorm2d(c_in), nn.Conv2d(c_in, c_out, 3, 1, 1), nn.PReLU(c_out),
                         nn.Conv2d(c_out, c_out, 3, 1, 1), nn.PReLU(c_out), nn.PReLU(c_out))  # fmt: skip


class OffsetUNet(nn.Module):
    """Tri-plane offset predictor (``TriPlane_Encoder``): IR-SE encoder; four steps of upsample (pixel shuffle or
    nearest) + concat skip + double conv; a last upsample; v2 concatenates G's planes; head -> [B, 3C, R, R]
    (v1: offsets added to G's planes; v2: the planes plus the head's output)."""

    def __init__(self, cfg: TriPlaneNetConfig) -> None:
        super().__init__()
        self.version, self.shuffle = cfg.version, cfg.upsample == "pixelshuffle"
        w = cfg.offset_widths
        self.input_layer, self.body = irse_body(6 if cfg.version == 1 else 9, w, cfg.offset_units)
        ends = stage_ends(cfg.offset_units)
        self.taps = [ends[0], ends[1], ends[2], ends[2] + 1]  # IR-SE-50: units 2, 6, 20, 21
        c, skips = w[3], [w[3], w[2], w[1], w[0]]
        for i, (s, d) in enumerate(zip(skips, cfg.decoder_widths, strict=False)):
            up_c = c if i == 0 or not self.shuffle else c // 4
            self.add_module(f"up{i + 1}", double_conv(up_c + s, d))
            c = d
        pc = 3 * cfg.triplane_channels
        c_head = (c // 4 if self.shuffle else c) + (pc if cfg.version == 2 else 0)
        h = cfg.head_channels
        self.head = nn.Sequential(nn.Conv2d(c_head, h, 3, 1, 1), nn.PReLU(h), nn.Conv2d(h, h, 3, 1, 1), nn.PReLU(h),
                                  nn.Conv2d(h, pc, 1))  # fmt: skip
        if cfg.zero_init_head:
            last = cast(nn.Conv2d, self.head[4])
            assert last.bias is not None  # nn.Conv2d's default bias=True
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
        self.r = cfg.triplane_resolution

    def _up(self, h: Tensor) -> Tensor:
        return F.pixel_shuffle(h, 2) if self.shuffle else F.interpolate(h, scale_factor=2.0, mode="nearest")

    def forward(self, x: Tensor, planes: Tensor) -> Tensor:  # x [B, in, H, W], planes [B, 3C, R, R] -> new planes
        h, skips = self.input_layer(x), {}
        for i, unit in enumerate(self.body):
            h = unit(h)
            skips[i] = h
        for i, tap in enumerate(reversed(self.taps)):
            h = getattr(self, f"up{i + 1}")(torch.cat([skips[tap], h if i == 0 else self._up(h)], 1))
        h = self._up(h)
        if h.shape[-1] != self.r:  # gan3dkit: small generators whose planes are not at the input resolution
            h = F.interpolate(h, size=(self.r, self.r), mode="nearest")
        if self.version == 1:
            return planes + self.head(h)
        return planes + self.head(torch.cat([planes, h], 1))


class TriPlaneNetEncoder(nn.Module):
    """``E(x [B, 3, H, W], camera (Cameras or [B, 25] labels) | None) -> EncoderOutput(planes, w+, pose, base)``.

    The generator ``G`` is frozen and not part of this module's state dict. Without a camera the pose head's
    prediction is used (TriPlaneNet itself takes the camera from Deep3DFaceRecon preprocessing). Backbone noise is
    ``const`` as in the public code.
    """

    latent_avg: Tensor

    def __init__(self, cfg: TriPlaneNetConfig, G: TriPlaneGenerator) -> None:
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self._G = [G]  # not registered: G's weights belong to the generator checkpoint
        self.camera_model = CameraModel.from_generator(G)
        self.psp = GradualStyleEncoder(cfg.widths, cfg.units, cfg.num_ws, cfg.w_dim, cfg.input_resolution)
        self.offsets = OffsetUNet(cfg)
        self.pose = InputPoseHead(self.psp.out_channels) if cfg.pose_head else None
        w_avg = getattr(G.backbone.mapping, "w_avg", None)
        w_avg = w_avg if w_avg is not None else torch.zeros(cfg.w_dim)
        self.register_buffer("latent_avg", w_avg.reshape(1, -1).repeat(cfg.num_ws, 1).clone())
        self.nrr = int(G.neural_rendering_resolution)

    @property
    def G(self) -> TriPlaneGenerator:
        return self._G[0]

    def resize(self, img: Tensor, size: int) -> Tensor:
        if img.shape[-1] == size:
            return img
        if self.cfg.resize == "area":
            return F.adaptive_avg_pool2d(img, (size, size))
        return F.interpolate(img, size=(size, size), mode="bilinear", antialias=True)

    def _render(self, planes: Tensor, cams: Cameras, ws: Tensor, size: int) -> Tensor:
        return self.resize(self.G.render_planes(planes, cams, ws, neural_rendering_resolution=self.nrr,
                                                     deterministic_render=True)["image"], size)

    def forward(self, image: Tensor, camera: Cameras | Tensor | None = None, use_offsets: bool = True
                ) -> EncoderOutput:
        cfg, size = self.cfg, self.cfg.input_resolution
        if image.shape[-1] == size:
            x = image
        else:
            x = F.interpolate(image, size=(size, size), mode="bilinear", antialias=True)
        codes, c3 = self.psp(x)
        ws = codes + self.latent_avg.unsqueeze(0)
        pose = self.pose(c3) if self.pose is not None else None
        if camera is None:
            if pose is None:
                raise ValueError("TriPlaneNet needs the input camera (this model has no pose head): pass --align")
            camera = self.camera_model.cameras(pose)
        camera = as_cameras(camera)
        base = self.G.synthesize_planes(ws, noise_mode="const")  # [B, 3, C, R, R]
        if not use_offsets:
            return EncoderOutput(base, ws, pose, base)
        wd = ws.detach()  # TriPlaneNet detaches the codes before the offset branch
        b, r = base.shape[0], cfg.triplane_resolution
        flat = base.detach().reshape(b, -1, r, r)
        y_hat = self._render(base.detach(), camera, wd, size)
        mirror = None
        if cfg.version == 2:
            mirror = x.flip(-1) - self._render(base.detach(), camera.mirror(), wd, size)
        planes = flat
        for step in range(1 + cfg.cascade_steps):  # CTTR: each pass predicts offsets from scratch (public code)
            inp = [y_hat, x - y_hat] + ([mirror] if mirror is not None else [])
            planes = self.offsets(torch.cat(inp, 1), flat)
            if step < cfg.cascade_steps:
                y_hat = self._render(planes.view_as(base), camera, wd, size)
        return EncoderOutput(planes.view_as(base), ws, pose, base)


class ConfidenceNet(nn.Module):
    """unsup3d's ConfNet (cin 3, cout 2, nf 64, zdim 128; module names as the netC of its CelebA checkpoint030.pth),
    used as TriPlaneNet v2 does (``dataset_preprocessing/ffhq/conf_map.py``): the sigma map of the mirror loss.

    ``forward`` takes the mirrored input and returns sigma aligned with it: the original image, bilinear to 256 then
    64, into ConfNet; the flip channel of its L1 sigma, bilinear back to the input's size, mirrored (the dataset
    mirrors the saved map). Pretrained and frozen by default (eq. 5); random and trained jointly with the
    likelihood of eq. 4 only with --random-init.
    """

    def __init__(self, nf: int = 64, zdim: int = 128) -> None:
        super().__init__()

        def gn(c: int) -> nn.GroupNorm:
            return nn.GroupNorm(c // 4, c)  # unsup3d: GroupNorm(16 * k, 64 * k)

        def down(ci: int, co: int) -> nn.Conv2d:
            return nn.Conv2d(ci, co, 4, 2, 1, bias=False)

        def up(ci: int, co: int) -> nn.ConvTranspose2d:
            return nn.ConvTranspose2d(ci, co, 4, 2, 1, bias=False)

        lrelu = nn.LeakyReLU(0.2)
        self.network = nn.Sequential(
            down(3, nf), gn(nf), lrelu, down(nf, nf * 2), gn(nf * 2), lrelu, down(nf * 2, nf * 4), gn(nf * 4), lrelu,
            down(nf * 4, nf * 8), lrelu, nn.Conv2d(nf * 8, zdim, 4, 1, 0, bias=False), nn.ReLU(),
            nn.ConvTranspose2d(zdim, nf * 8, 4, 1, 0, bias=False), nn.ReLU(), up(nf * 8, nf * 4), gn(nf * 4),
            nn.ReLU(), up(nf * 4, nf * 2), gn(nf * 2), nn.ReLU(),
        )  # fmt: skip
        self.out_net1 = nn.Sequential(
            up(nf * 2, nf), gn(nf), nn.ReLU(), up(nf, nf), gn(nf), nn.ReLU(), nn.Conv2d(nf, 2, 5, 1, 2, bias=False),
            nn.Softplus(),
        )  # fmt: skip
        self.out_net2 = nn.Sequential(nn.Conv2d(nf * 2, 2, 3, 1, 1, bias=False), nn.Softplus())  # perceptual sigma

    def forward(self, x_mirror: Tensor) -> Tensor:  # [B, 3, H, W] in [-1, 1] (mirrored input) -> sigma [B, 1, H, W]
        im = (x_mirror.flip(-1) + 1) / 2
        for size in (256, 64):
            im = F.interpolate(im, size=(size, size), mode="bilinear", align_corners=False)
        sigma = self.out_net1(self.network(im * 2 - 1))[:, 1:]
        sigma = F.interpolate(sigma, size=x_mirror.shape[-2:], mode="bilinear", align_corners=False)
        return sigma.flip(-1) + 1e-3  # gan3dkit: a floor, as the loss divides by sigma
