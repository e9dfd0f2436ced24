"""Ko et al.'s depth-based reprojection (warp) loss: canonical-view features warped into the current view by depth."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..cameras.camera import Cameras, as_cameras
from ..metrics.perceptual import load_backbone
from ..metrics.weights import WeightsUnavailable
from ..render.rays import ray_bundle

#: ImageNet normalisation of torchvision's VGG16.
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


def reproject(depth: Tensor, camera: Cameras | Tensor, source: Cameras | Tensor) -> tuple[Tensor, Tensor]:
    """Where each pixel of `camera` lands in `source` (grid_sample coordinates) given its ray depth.

    Args:
        depth: [B, 1, r, r] ray distance rendered at `camera` (EG3D `image_depth`).
        camera, source: B cameras each (``Cameras``; a [B, 25] label is decoded once).

    Returns:
        grid [B, r, r, 2] in [-1, 1] (align_corners=False: -1 is the outer edge of the first pixel), and
        in_front [B, 1, r, r] (point in front of the source camera). Gradients reach `camera` through the rays and
        the depth through the points, as in Ko et al.'s `warping_loss.py`.
    """
    b, _, r, _ = depth.shape
    origins, dirs = ray_bundle(as_cameras(camera), r)  # [B, r*r, 3]
    points = origins + dirs * depth.reshape(b, -1, 1)
    src = as_cameras(source)
    rot, pos = src.rotations, src.origins  # cam2world
    local = (points - pos[:, None]) @ rot  # world -> camera (R^T (X - o)), [B, N, 3]
    z = local[..., 2:3]
    k = src.intrinsics
    xy = local[..., :2] / z.clamp_min(1e-6)
    u = k[:, None, 0, 0] * xy[..., 0] + k[:, None, 0, 1] * xy[..., 1] + k[:, None, 0, 2]
    v = k[:, None, 1, 1] * xy[..., 1] + k[:, None, 1, 2]
    grid = torch.stack([u, v], -1) * 2 - 1
    return grid.reshape(b, r, r, 2), (z > 1e-6).reshape(b, 1, r, r).float()


class WarpFeatures(nn.Module):
    """Features compared by the warp loss: torchvision VGG16 `features[:16]` (conv3_3 + ReLU; Ko et al.) on
    ImageNet-normalised [0, 1] images ('auto' and 'vgg-conv3_3': the paper's; a missing ImageNet VGG16 is an error
    naming `gan3dkit weights add`), or the pixels themselves ('rgb', only when asked for)."""

    mean: Tensor
    std: Tensor

    def __init__(self, kind: str = "auto", backbone: str | Path | None = None) -> None:
        super().__init__()
        self.vgg: nn.Module | None = None
        self.note = ""
        if kind in ("auto", "vgg-conv3_3"):
            try:
                features, desc = load_backbone("vgg", backbone)
            except (WeightsUnavailable, FileNotFoundError) as exc:
                reason = str(exc).split(". Options")[0].splitlines()[0]
                raise WeightsUnavailable(
                    f"Ko et al.'s warp loss compares ImageNet VGG16 conv3_3 features: {reason}. Add the file with "
                    "`gan3dkit weights add FILE` (see `gan3dkit weights list`), or choose pixels explicitly: "
                    "--set pose.warp_features=rgb") from None
            self.vgg = features[:16]
            self.kind = "vgg-conv3_3"
            self.note = desc
        elif kind == "rgb":
            self.kind = "rgb"
            self.note = "warp loss on pixels (pose.warp_features=rgb), not Ko et al.'s VGG16 conv3_3 features"
        else:
            raise ValueError(f"warp features must be auto, vgg-conv3_3 or rgb, got {kind!r}")
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1))

    def forward(self, image: Tensor) -> Tensor:  # [B, 3, H, W] in [-1, 1] -> [B, C, h, w]
        if self.vgg is None:
            return image
        x = (image + 1) / 2
        if x.shape[-1] != 256:
            x = F.interpolate(x, size=(256, 256), mode="area" if x.shape[-1] > 256 else "bilinear",
                              align_corners=None if x.shape[-1] > 256 else False)
        return self.vgg((x - self.mean) / self.std)


def warp_loss(target_feat: Tensor, canonical_feat: Tensor, depth: Tensor, camera: Cameras | Tensor,
              canonical: Cameras | Tensor, mask: str = "below_mean") -> Tensor:
    """L1 between the target's features and the canonical view's features warped into `camera` by `depth`.

    Args:
        target_feat: [B, C, h, w] features of the input image (seen from the unknown true camera).
        canonical_feat: [B, C, h', w'] features of the render at the canonical camera (detached w in Ko et al.).
        depth: [B, 1, r, r] depth rendered at the current `camera`; the comparison runs at r x r.
        camera, canonical: B cameras each.
        mask: 'below_mean' keeps pixels with depth < mean(depth) (Ko et al.'s foreground), 'none' keeps all.

    Returns a scalar: zero when the pose is right, the depth exact and the features view-independent.
    """
    r = depth.shape[-1]
    grid, valid = reproject(depth, camera, canonical)
    warped = F.grid_sample(canonical_feat, grid, mode="bilinear", padding_mode="border", align_corners=False)
    tgt = target_feat if target_feat.shape[-1] == r else F.interpolate(
        target_feat, size=(r, r), mode="bilinear", align_corners=False, antialias=target_feat.shape[-1] > r)
    if mask == "below_mean":
        valid = valid * (depth < depth.mean(dim=(1, 2, 3), keepdim=True)).float()
    elif mask != "none":
        raise ValueError(f"warp mask must be below_mean or none, got {mask!r}")
    diff = (warped - tgt).abs().mean(1, keepdim=True)  # [B, 1, r, r]
    return (diff * valid).sum() / valid.sum().clamp_min(1.0)
