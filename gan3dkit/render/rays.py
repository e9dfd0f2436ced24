"""Camera rays in EG3D's convention: pixel centres (i + 0.5) / R, normalised intrinsics, unit directions."""

from __future__ import annotations

import torch
from torch import Tensor

from ..cameras.camera import Cameras


def pixel_centers(resolution: int, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> Tensor:
    """[R*R, 2] normalised (u, v) = ((col + 0.5) / R, (row + 0.5) / R), row-major (ray k = row * R + col)."""
    idx = (torch.arange(resolution, device=device, dtype=dtype) + 0.5) / resolution
    v, u = torch.meshgrid(idx, idx, indexing="ij")
    return torch.stack([u.reshape(-1), v.reshape(-1)], dim=-1)


def ray_bundle(cameras: Cameras, resolution: int) -> tuple[Tensor, Tensor]:
    """Rays through the pixel centres of a resolution x resolution image.

    Follows EG3D's ray sampler: x_cam = (u - cx + cy s / fy - s v / fy) / fx, y_cam = (v - cy) / fy, z_cam = 1
    (OpenCV axes), lifted to world by cam2world; directions are normalised, so a depth t along a ray is the
    Euclidean distance from the camera centre (the depth convention of data_specs).

    Returns:
        origins [B, R*R, 3] and unit directions [B, R*R, 3], row-major over pixels.
    """
    c2w, k = cameras.cam2world, cameras.intrinsics
    uv = pixel_centers(resolution, c2w.device, c2w.dtype)  # [N, 2]
    fx, fy = k[:, 0, 0, None], k[:, 1, 1, None]
    cx, cy, sk = k[:, 0, 2, None], k[:, 1, 2, None], k[:, 0, 1, None]
    u, v = uv[None, :, 0], uv[None, :, 1]
    x = (u - cx + cy * sk / fy - sk * v / fy) / fx  # [B, N]
    y = (v - cy) / fy
    cam_dirs = torch.stack([x, y, torch.ones_like(x)], dim=-1)  # [B, N, 3]
    dirs = cam_dirs @ c2w[:, :3, :3].transpose(1, 2)
    dirs = dirs / dirs.norm(dim=-1, keepdim=True)
    origins = c2w[:, None, :3, 3].expand_as(dirs)
    return origins, dirs
