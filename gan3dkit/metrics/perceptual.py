"""LPIPS and DISTS with torchvision-free AlexNet/VGG16 feature stacks; calibrated heads read from installed packages."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .weights import WeightSpec, fetch

ALEXNET = WeightSpec("alexnet (torchvision, ImageNet)", "alexnet-owt-7be5be79.pth",
                     url="https://download.pytorch.org/models/alexnet-owt-7be5be79.pth", sha256="7be5be79",
                     hint="pass --lpips-backbone PATH (torchvision alexnet-owt-7be5be79.pth)")
VGG16 = WeightSpec("vgg16 (torchvision, ImageNet)", "vgg16-397923af.pth",
                   url="https://download.pytorch.org/models/vgg16-397923af.pth", sha256="397923af",
                   hint="pass --lpips-backbone / --dists-backbone PATH (torchvision vgg16-397923af.pth)")
LPIPS_HEADS = {
    "alex": WeightSpec("lpips v0.1 alex heads", "lpips-v0.1-alex.pth",
                       url="https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/alex.pth",
                       sha256="df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0",
                       packages=(("lpips", "weights/v0.1/alex.pth"),),
                       package_sha256={"lpips": "df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0"}),
    "vgg": WeightSpec("lpips v0.1 vgg heads", "lpips-v0.1-vgg.pth",
                      url="https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/vgg.pth",
                      sha256="a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868",
                      packages=(("lpips", "weights/v0.1/vgg.pth"),),
                      package_sha256={"lpips": "a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868"}),
}
DISTS_SHA256 = "f5e65c96230b7f6ca995691647d482237e4cab8a50c5c4a5784f219ef0748218"
DISTS_WEIGHTS = WeightSpec("DISTS alpha/beta", "dists-weights.pt",
                           url="https://github.com/dingkeyan93/DISTS/raw/master/DISTS_pytorch/weights.pt",
                           sha256=DISTS_SHA256,
                           packages=(("DISTS_pytorch", "weights.pt"),),
                           package_sha256={"DISTS_pytorch": DISTS_SHA256})


def alexnet_features() -> nn.Sequential:
    """torchvision `alexnet().features` (same indices, so `features.N.*` weights load one to one)."""
    def r() -> nn.Module:
        return nn.ReLU(inplace=False)

    return nn.Sequential(nn.Conv2d(3, 64, 11, 4, 2), r(), nn.MaxPool2d(3, 2), nn.Conv2d(64, 192, 5, padding=2), r(),
                         nn.MaxPool2d(3, 2), nn.Conv2d(192, 384, 3, padding=1), r(), nn.Conv2d(384, 256, 3, padding=1),
                         r(), nn.Conv2d(256, 256, 3, padding=1), r(), nn.MaxPool2d(3, 2))


def vgg16_features() -> nn.Sequential:
    """torchvision `vgg16().features` (configuration D, 31 modules)."""
    layers: list[nn.Module] = []
    c_in = 3
    for v in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"):
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(c_in, int(v), 3, padding=1), nn.ReLU(inplace=False)]
            c_in = int(v)
    return nn.Sequential(*layers)


def load_backbone(net: str, source: str | Path | None = None, random_init: bool = False,
                  seed: int = 0) -> tuple[nn.Sequential, str]:
    """(features, description). `random_init` skips the ImageNet weights (numbers are then NOT the metric)."""
    if net not in ("alex", "vgg"):
        raise ValueError(f"backbone must be 'alex' or 'vgg', got {net!r}")
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        features = alexnet_features() if net == "alex" else vgg16_features()
    if random_init:
        return features.eval().requires_grad_(False), f"{net} RANDOM INIT (seed {seed}; uncalibrated)"
    spec = ALEXNET if net == "alex" else VGG16
    path = fetch(spec, source)
    sd = torch.load(path, map_location="cpu", weights_only=True)
    sd = {k[len("features."):]: v for k, v in sd.items() if k.startswith("features.")}
    features.load_state_dict(sd, strict=True)
    return features.eval().requires_grad_(False), f"{net} ImageNet ({Path(path).name})"


class LPIPS(nn.Module):
    """LPIPS v0.1 (Zhang et al. 2018, lpips 0.1.4): unit-normalised features, squared differences, learned 1x1 heads,
    spatial mean, summed over 5 layers. Inputs in [-1, 1], [B, 3, H, W] -> [B]."""

    SLICES: ClassVar[dict[str, tuple[int, ...]]] = {"alex": (2, 5, 8, 10, 12), "vgg": (4, 9, 16, 23, 30)}
    shift: Tensor
    scale: Tensor

    def __init__(self, net: str = "alex", backbone: str | Path | None = None, heads: str | Path | None = None,
                 random_backbone: bool = False, seed: int = 0) -> None:
        super().__init__()
        self.features, backbone_desc = load_backbone(net, backbone, random_backbone, seed)
        sd = torch.load(fetch(LPIPS_HEADS[net], heads), map_location="cpu", weights_only=True)
        self.heads = nn.ParameterList(
            [nn.Parameter(sd[f"lin{i}.model.1.weight"], requires_grad=False) for i in range(5)])
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1))
        self.calibrated = not random_backbone
        self.description = f"lpips-v0.1-{net} (backbone: {backbone_desc})"
        self.ends = self.SLICES[net]

    def _feats(self, x: Tensor) -> list[Tensor]:
        h, out, start = (x - self.shift) / self.scale, [], 0
        for end in self.ends:
            for i in range(start, end):
                h = self.features[i](h)
            out.append(h)
            start = end
        return out

    @torch.no_grad()
    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        total = torch.zeros(x.shape[0], device=x.device)
        for fx, fy, w in zip(self._feats(x.float()), self._feats(y.float()), self.heads, strict=False):
            fx = fx / (fx.square().sum(1, keepdim=True).sqrt() + 1e-10)
            fy = fy / (fy.square().sum(1, keepdim=True).sqrt() + 1e-10)
            total = total + F.conv2d((fx - fy).square(), w).mean(dim=(1, 2, 3))
        return total


class L2Pool(nn.Module):
    """DISTS' L2 pooling: sqrt(Hanning(5)[1:-1]^2-window conv of x^2), stride 2, padding 1."""

    filter: Tensor

    def __init__(self, channels: int) -> None:
        super().__init__()
        a = np.hanning(5)[1:-1]
        g = torch.tensor(a[:, None] * a[None, :], dtype=torch.float32)
        self.register_buffer("filter", (g / g.sum())[None, None].repeat(channels, 1, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return (F.conv2d(x.square(), self.filter, stride=2, padding=1, groups=x.shape[1]) + 1e-12).sqrt()


class DISTS(nn.Module):
    """DISTS (Ding et al. 2020, DISTS_pytorch 0.1): VGG16 with L2 pooling, texture (means) and structure (covariance)
    similarities weighted by the released alpha/beta. Inputs in [0, 1], [B, 3, H, W] -> [B] (0 = identical)."""

    CHANNELS = (3, 64, 128, 256, 512, 512)
    alpha: Tensor
    beta: Tensor
    mean: Tensor
    std: Tensor

    def __init__(self, backbone: str | Path | None = None, weights: str | Path | None = None,
                 random_backbone: bool = False, seed: int = 0) -> None:
        super().__init__()
        vgg, backbone_desc = load_backbone("vgg", backbone, random_backbone, seed)
        cuts = [(0, 4, None), (5, 9, 64), (10, 16, 128), (17, 23, 256), (24, 30, 512)]  # maxpools 4/9/16/23 -> L2Pool
        self.stages = nn.ModuleList(
            nn.Sequential(*([L2Pool(pool)] if pool else []), *[vgg[i] for i in range(a, b)]) for a, b, pool in cuts)
        sd = torch.load(fetch(DISTS_WEIGHTS, weights), map_location="cpu", weights_only=True)
        self.register_buffer("alpha", sd["alpha"].float())
        self.register_buffer("beta", sd["beta"].float())
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
        self.calibrated = not random_backbone
        self.description = f"dists (backbone: vgg16 {backbone_desc})"
        self.requires_grad_(False).eval()

    def _feats(self, x: Tensor) -> list[Tensor]:
        h, out = (x - self.mean) / self.std, [x]
        for stage in self.stages:
            h = stage(h)
            out.append(h)
        return out

    @torch.no_grad()
    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        fx, fy = self._feats(x.float()), self._feats(y.float())
        w_sum = self.alpha.sum() + self.beta.sum()
        alphas = torch.split(self.alpha / w_sum, list(self.CHANNELS), dim=1)
        betas = torch.split(self.beta / w_sum, list(self.CHANNELS), dim=1)
        d1 = d2 = torch.zeros(x.shape[0], 1, 1, 1, device=x.device)
        c1 = c2 = 1e-6
        for a, b, alpha, beta in zip(fx, fy, alphas, betas, strict=False):
            ma, mb = a.mean([2, 3], keepdim=True), b.mean([2, 3], keepdim=True)
            d1 = d1 + (alpha * (2 * ma * mb + c1) / (ma.square() + mb.square() + c1)).sum(1, keepdim=True)
            va = (a - ma).square().mean([2, 3], keepdim=True)
            vb = (b - mb).square().mean([2, 3], keepdim=True)
            cov = (a * b).mean([2, 3], keepdim=True) - ma * mb
            d2 = d2 + (beta * (2 * cov + c2) / (va + vb + c2)).sum(1, keepdim=True)
        return 1 - (d1 + d2).flatten()
