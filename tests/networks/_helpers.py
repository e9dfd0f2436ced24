"""Helpers shared by the network tests: camera labels and analytic "coordinate" tri-planes."""

from __future__ import annotations

import math

import torch

from gan3dkit.cameras import Cameras, lookat_cam2world


def camera_labels(
    yaws, pitch: float = 0.0, radius: float = 2.7, focal: float = 4.2647, lookat=(0.0, 0.0, 0.2)
) -> torch.Tensor:  # [B, 25]
    """EG3D labels for cameras at yaw offsets ``yaws`` (radians, toward +x) and one pitch offset."""
    h = torch.tensor([math.pi / 2 + y for y in yaws], dtype=torch.float64)
    v = torch.full_like(h, math.pi / 2 + pitch)
    c2w = lookat_cam2world(h, v, radius, lookat).float()
    return Cameras.from_matrices(c2w, focal).to_label()


def coordinate_planes(resolution: int = 64, batch: int = 1) -> torch.Tensor:  # [B, 3, 2, R, R]
    """Planes whose two channels hold the plane's own (u, v) grid coordinate at every pixel centre.

    With ``grid_sample(align_corners=False)`` bilinear sampling returns exactly the projected (u, v) of a point
    (in [-1, 1] box units) for points at least half a pixel inside the box, so a decoder can rebuild the point's
    coordinates and evaluate any analytic field through the real sampling path.
    """
    centres = (torch.arange(resolution, dtype=torch.float32) * 2 + 1) / resolution - 1  # pixel centres in [-1, 1]
    v, u = torch.meshgrid(centres, centres, indexing="ij")  # H axis = v, W axis = u
    plane = torch.stack([u, v])  # [2, R, R]
    return plane.expand(batch, 3, 2, resolution, resolution).contiguous()
