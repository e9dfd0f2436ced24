"""LP3D and LP3D-LT as Dong142857/Live3DPortrait builds them (`EG3DInvEncoder`): the layout its released files load.

Facts from ``models/model.py`` and ``models/triencoder.py`` at the public clone, with smp 0.3.3's ``DeepLabV3``
(``encoder_name='resnet34'``, ``encoder_depth=3``: the stem, layer1 and layer2 run; every BN replaced by identity and
every conv given a bias) and ``mix_transformer`` (``OverlapPatchEmbed`` 7x7 stride 2, ``Block`` without q/kv biases).
Where this departs from seed 003 (methods.md §5), gan3dkit's paper variant is the ``lp3d`` / ``lp3d-lt`` arch:
- the input's extra channels are the raw row and column indices 0..H-1 (``coordinates = "index"``);
- E_F: patch embed of the DeepLabV3 features, 5 blocks (LT 2), no final LayerNorm, PixelShuffle(2), bilinear x2
  (align_corners), then conv 256->128, ReLU, bilinear x2, conv, ReLU, conv -> 96 (LT: conv, LeakyReLU, conv -> 128 at
  128²);
- E_high reads the 5-channel image in both modes (the LT branch on DeepLabV3 features is commented out);
- the fusion: convs on [E_high, E_F], one block (2 heads, sr 2), PixelShuffle(2), then convs on [that, E_F]
  (LT: on that alone, upsampled x2).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import EncoderOutput
from .blocks import ASPPNoBN, OverlapPatchEmbed, ResNetNoBN, SegformerBlock


@dataclass
class LP3DReleaseConfig:
    """Sizes of the released LP3D (defaults) and LP3D-LT (``lt``); smaller values only for tests."""

    lt: bool = False
    input_resolution: int = 512
    triplane_resolution: int = 256
    triplane_channels: int = 32
    resnet_widths: tuple[int, int] = (64, 128)
    """Widths of the stem/layer1 and layer2 (the stages that run at encoder_depth 3)."""
    resnet_blocks: tuple[int, int] = (3, 4)
    deeplab_channels: int = 256
    aspp_rates: tuple[int, int, int] = (12, 24, 36)
    vit_dim: int = 1024
    f_blocks: int = 5
    """Blocks of E_F (LT: 2)."""
    f_heads: int = 4
    fuse_heads: int = 2
    fuse_sr: int = 2
    mlp_ratio: float = 2.0
    f_channels: int = 128
    """Width of E_F's convs (both modes)."""
    high_channels: int = 96
    """Width of E_high (LT: 128)."""
    fuse_channels: tuple[int, int] = (256, 128)
    """Widths of the fusion's input convs (LT: one conv of the concatenation's width) and output convs."""
    coordinates: str = "index"
    """The 2 extra input channels: "index" (the public code: row, column as 0..H-1) or "normalized" ([-1, 1])."""
    pose_head: bool = False
    """The release predicts no camera (`encode` uses the given or the frontal one and says which)."""

    def validate(self) -> None:
        if self.pose_head:
            raise ValueError("the released LP3D layout has no pose head (use the lp3d arch with pose_head)")
        if self.coordinates not in ("index", "normalized"):
            raise ValueError(f"coordinates must be index or normalized, got {self.coordinates!r}")
        if self.vit_dim % 4 or self.input_resolution % 16:
            raise ValueError("vit_dim must be divisible by 4 and input_resolution by 16")
        if self.input_resolution != 2 * self.triplane_resolution:
            raise ValueError(f"the released LP3D layout outputs planes half its input size: input_resolution must be "
                             f"{2 * self.triplane_resolution} for {self.triplane_resolution}² planes")


def lt_defaults() -> LP3DReleaseConfig:
    """LP3D-LT as released (``mode="LT"``)."""
    return LP3DReleaseConfig(lt=True, f_blocks=2, high_channels=128)


def _lrelu() -> nn.Module:
    return nn.LeakyReLU(0.01)


def _up2() -> nn.Module:
    return nn.Upsample(scale_factor=2.0, mode="bilinear", align_corners=True)  # = nn.UpsamplingBilinear2d(2)


def _conv(c_in: int, c_out: int, k: int = 3, s: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, k, s, k // 2)


def _seq(*specs: tuple[int, int] | str, k0: int = 3, s0: tuple[int, ...] = ()) -> nn.Sequential:
    """Convs ((c_in, c_out); the first with kernel ``k0``; strides 2 at conv indices ``s0``) and activations by
    name ('l': LeakyReLU 0.01, 'r': ReLU, 'u': bilinear x2) in order, so module indices follow the release."""
    layers: list[nn.Module] = []
    n = 0
    for spec in specs:
        if isinstance(spec, tuple):
            layers.append(_conv(spec[0], spec[1], k0 if n == 0 else 3, 2 if n in s0 else 1))
            n += 1
        else:
            layers.append({"l": _lrelu, "r": nn.ReLU, "u": _up2}[spec]())
    return nn.Sequential(*layers)


class LP3DReleaseEncoder(nn.Module):
    """``E(image [B, 3, H, W] in [-1, 1]) -> EncoderOutput(planes [B, 3, C, R, R])`` in the release's layout."""

    def __init__(self, cfg: LP3DReleaseConfig) -> None:
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        w0, w1 = cfg.resnet_widths
        d, fc, hc, out = cfg.vit_dim, cfg.f_channels, cfg.high_channels, 3 * cfg.triplane_channels
        self.backbone = ResNetNoBN(5, (w0, w1), cfg.resnet_blocks, 3)
        self.deeplab = ASPPNoBN(w1, cfg.deeplab_channels, cfg.aspp_rates)
        self.f_embed = OverlapPatchEmbed(cfg.deeplab_channels, d, 7, 2)
        self.f_blocks = nn.ModuleList(SegformerBlock(d, cfg.f_heads, cfg.mlp_ratio, 1, qkv_bias=False)
                                      for _ in range(cfg.f_blocks))  # fmt: skip
        c0, c1 = cfg.fuse_channels
        if not cfg.lt:
            self.f_net = _seq((d // 4, fc), "r", "u", (fc, fc), "r", (fc, out))
            self.high = _seq((5, 64), "l", (64, hc), "l", (hc, hc), "l", (hc, hc), "l", (hc, hc), "l", k0=7, s0=(0,))
            self.final_net = _seq((hc + out, c0), "l", (c0, c1), "l")
            embed_in, final_out = c1, d // 4 + out
            self.output_net = _seq((final_out, c0), "l", (c0, c1), "l", (c1, c1), "l", (c1, out))
        else:
            self.f_net = _seq((d // 4, fc), "l", (fc, fc))
            self.high = _seq((5, 64), "l", (64, hc), "l", (hc, hc), "l", (hc, hc), "l", (hc, hc), "l", (hc, hc), "l",
                             (hc, hc), k0=7, s0=(0, 1))  # fmt: skip
            self.final_net = _seq((hc + fc, c0))
            embed_in = c0
            self.output_net = _seq((d // 4, c0), "l", "u", (c0, c1), "l", (c1, c1), "l", (c1, out), "l", (out, out))
        self.final_embed = OverlapPatchEmbed(embed_in, d, 7, 2)
        self.final_block = SegformerBlock(d, cfg.fuse_heads, cfg.mlp_ratio, cfg.fuse_sr, qkv_bias=False)

    def transformer_parameters(self) -> list[nn.Parameter]:
        """Parameters of the transformer parts (patch embeddings and blocks)."""
        mods = [self.f_embed, self.f_blocks, self.final_embed, self.final_block]
        return [p for m in mods for p in m.parameters()]

    def inputs(self, image: Tensor) -> Tensor:  # [B, 3, H, W] -> [B, 5, S, S]
        """The 5-channel input: the image at ``input_resolution`` and the two coordinate channels."""
        cfg = self.cfg
        size = (cfg.input_resolution, cfg.input_resolution)
        x = image if image.shape[-2:] == size else F.interpolate(image, size=size, mode="bilinear", antialias=True)
        b, _, h, w = x.shape
        if cfg.coordinates == "index":
            rows = torch.arange(h, device=x.device, dtype=x.dtype)[:, None].expand(h, w)
            cols = torch.arange(w, device=x.device, dtype=x.dtype)[None, :].expand(h, w)
        else:
            rows = ((torch.arange(h, device=x.device, dtype=x.dtype) + 0.5) / h * 2 - 1)[:, None].expand(h, w)
            cols = ((torch.arange(w, device=x.device, dtype=x.dtype) + 0.5) / w * 2 - 1)[None, :].expand(h, w)
        return torch.cat([x, rows.expand(b, 1, h, w), cols.expand(b, 1, h, w)], 1)

    @staticmethod
    def _tokens(embed: nn.Module, blocks: list[nn.Module], x: Tensor) -> Tensor:
        t, h, w = embed(x)
        for blk in blocks:
            t = blk(t, h, w)
        return F.pixel_shuffle(t.transpose(1, 2).reshape(x.shape[0], -1, h, w), 2)

    def forward(self, image: Tensor, camera: Tensor | None = None) -> EncoderOutput:
        del camera  # LP3D is pose-free
        x = self.inputs(image)
        low = self.deeplab(self.backbone(x)[-1])
        f = self.f_net(F.interpolate(self._tokens(self.f_embed, list(self.f_blocks), low), scale_factor=2.0,
                                     mode="bilinear", align_corners=True))  # fmt: skip
        high = self.high(x)
        fused = self._tokens(self.final_embed, [self.final_block], self.final_net(torch.cat([high, f], 1)))
        planes = self.output_net(fused if self.cfg.lt else torch.cat([fused, f], 1))
        r, c = self.cfg.triplane_resolution, self.cfg.triplane_channels
        if planes.shape[-1] != r:
            raise ValueError(f"LP3D planes came out {planes.shape[-1]}², the generator's are {r}²")
        return EncoderOutput(planes.reshape(planes.shape[0], 3, c, r, r), None, None)
