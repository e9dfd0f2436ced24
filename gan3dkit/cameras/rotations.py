"""Orbit yaw/pitch/roll <-> cam2world, EG3D (h, v) <-> yaw/pitch, and Zhou et al.'s 6D rotation representation."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from .samplers import create_cam2world_matrix


def eg3d_hv_to_yaw_pitch(h: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
    """EG3D sampler angles -> orbit yaw (azimuth, 0 = frontal, + toward +x) and pitch (elevation, + = above)."""
    v = v.clamp(1e-5, math.pi - 1e-5)
    return h - math.pi / 2, torch.asin(1.0 - 2.0 * v / math.pi)


def yaw_pitch_to_eg3d_hv(yaw: Tensor, pitch: Tensor) -> tuple[Tensor, Tensor]:
    """Inverse of `eg3d_hv_to_yaw_pitch`: h = yaw + pi/2, v = pi/2 * (1 - sin(pitch))."""
    return yaw + math.pi / 2, math.pi / 2 * (1.0 - torch.sin(pitch))


def ypr_to_cam2world(
    yaw: Tensor,
    pitch: Tensor,
    roll: Tensor,
    radius: float | Tensor = 2.7,
    lookat: Sequence[float] | Tensor = (0.0, 0.0, 0.0),
) -> Tensor:
    """[B, 4, 4] cam2world for orbit angles (data_specs `orbit_v1`).

    The camera sits at radius * (cos(pitch) sin(yaw), sin(pitch), cos(pitch) cos(yaw)) -- the same point EG3D's
    samplers give for h = yaw + pi/2, v = pi/2 (1 - sin(pitch)) -- looks at `lookat`, and is then rotated by `roll`
    about its optical axis (right-handed about camera +z): R = R_lookat @ Rz(roll).
    """
    yaw, pitch, roll = (torch.as_tensor(a, dtype=torch.float64).reshape(-1) for a in (yaw, pitch, roll))
    origins = torch.stack([torch.cos(pitch) * torch.sin(yaw), torch.sin(pitch), torch.cos(pitch) * torch.cos(yaw)], -1)
    origins = origins * torch.as_tensor(radius, dtype=torch.float64).reshape(-1, 1)
    target = torch.as_tensor(lookat, dtype=torch.float64).reshape(1, 3)
    m = create_cam2world_matrix(target - origins, origins)
    c, s = torch.cos(roll), torch.sin(roll)
    rz = torch.zeros(len(roll), 3, 3, dtype=torch.float64)
    rz[:, 0, 0], rz[:, 0, 1], rz[:, 1, 0], rz[:, 1, 1], rz[:, 2, 2] = c, -s, s, c, 1.0
    m[:, :3, :3] = m[:, :3, :3] @ rz
    return m


def cam2world_to_ypr(cam2world: Tensor, lookat: Sequence[float] | Tensor = (0.0, 0.0, 0.0)) -> Tensor:
    """[B, 3] (yaw, pitch, roll) of cam2world [B, 4, 4]; inverse of `ypr_to_cam2world` for cameras aimed at lookat.

    yaw and pitch come from the camera position; roll is the angle from the roll-free frame (the one aimed from the
    same position along the camera's actual forward axis) to the actual frame, about the forward axis.
    """
    m = cam2world.to(torch.float64)
    t = m[:, :3, 3]
    radius = t.norm(dim=-1).clamp_min(1e-12)
    yaw = torch.atan2(t[:, 0], t[:, 2])
    pitch = torch.asin((t[:, 1] / radius).clamp(-1, 1))
    forward = m[:, :3, 2]
    ref = create_cam2world_matrix(forward, t)[:, :3, 0]
    right = m[:, :3, 0]
    roll = torch.atan2((torch.linalg.cross(ref, right) * forward).sum(-1), (ref * right).sum(-1))
    return torch.stack([yaw, pitch, roll], dim=-1)


def matrix_to_rotation_6d(r: Tensor) -> Tensor:
    """[..., 3, 3] -> [..., 6]: the first two *columns* of R, as in Zhou et al. (CVPR'19), column 1 then column 2."""
    return torch.cat([r[..., :, 0], r[..., :, 1]], dim=-1)


def rotation_6d_to_matrix(d6: Tensor) -> Tensor:
    """[..., 6] -> [..., 3, 3] by Gram-Schmidt (Zhou et al.): b1 = n(a1), b2 = n(a2 - (b1.a2) b1), b3 = b1 x b2."""
    a1, a2 = d6[..., :3], d6[..., 3:]
    b1 = a1 / a1.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    b2 = a2 - (b1 * a2).sum(-1, keepdim=True) * b1
    b2 = b2 / b2.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    b3 = torch.linalg.cross(b1, b2)
    return torch.stack([b1, b2, b3], dim=-1)


def quaternion_to_matrix(q: Tensor) -> Tensor:  # [..., 4] (w, x, y, z), any norm -> [..., 3, 3]
    """Rotation matrices of quaternions (w, x, y, z), normalised first."""
    q = q / q.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    w, x, y, z = q.unbind(-1)
    rows = [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
            2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
            2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]
    return torch.stack(rows, -1).reshape(q.shape[:-1] + (3, 3))
