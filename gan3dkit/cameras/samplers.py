"""EG3D's camera pose samplers (LookAt / Gaussian / Uniform) with their exact position formula."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from .camera import Cameras

_V_EPS = 1e-5


def create_cam2world_matrix(forward: Tensor, origin: Tensor) -> Tensor:
    """[B, 4, 4] cam2world from forward directions [B, 3] and camera origins [B, 3] (EG3D, no roll).

    up = (0, 1, 0); right = -normalize(up x forward); up' = normalize(forward x right); columns (right, up', forward),
    so camera y points down (OpenCV). Where forward is parallel to the world up axis (EG3D returns NaNs there) the
    right vector falls back to world +x.
    """
    forward = _normalize(forward)
    up = torch.zeros_like(forward)
    up[:, 1] = 1.0
    cross = torch.linalg.cross(up, forward)
    degenerate = cross.norm(dim=-1, keepdim=True) < 1e-9
    x_axis = torch.zeros_like(forward)
    x_axis[:, 0] = 1.0
    right = torch.where(degenerate, x_axis, -_normalize(cross))
    new_up = _normalize(torch.linalg.cross(forward, right))
    m = torch.eye(4, dtype=forward.dtype, device=forward.device).repeat(forward.shape[0], 1, 1)
    m[:, :3, :3] = torch.stack([right, new_up, forward], dim=-1)
    m[:, :3, 3] = origin
    return m


def eg3d_positions(h: Tensor, v: Tensor, radius: float | Tensor) -> Tensor:
    """Camera positions [B, 3] for EG3D angles h (horizontal), v (vertical), as EG3D's samplers place them.

    theta = h, phi = arccos(1 - 2 v / pi) (v clamped to [1e-5, pi - 1e-5]);
    x = r sin(phi) cos(pi - theta), y = r cos(phi), z = r sin(phi) sin(pi - theta).
    (h, v) = (pi/2, pi/2) is frontal: (0, 0, r). A yaw offset d moves the azimuth by exactly d toward +x; a pitch
    offset d is not linear: elevation = asin(-2 d / pi).
    """
    v = v.clamp(_V_EPS, math.pi - _V_EPS)
    phi = torch.arccos(1.0 - 2.0 * v / math.pi)
    theta = h
    x = radius * torch.sin(phi) * torch.cos(math.pi - theta)
    y = radius * torch.cos(phi)
    z = radius * torch.sin(phi) * torch.sin(math.pi - theta)
    return torch.stack([x, y, z], dim=-1)


def lookat_cam2world(
    h: Tensor, v: Tensor, radius: float | Tensor, lookat: Sequence[float] | Tensor = (0, 0, 0)
) -> Tensor:
    """[B, 4, 4] cam2world for cameras at EG3D angles (h, v) on the sphere of `radius`, looking at `lookat`."""
    origins = eg3d_positions(h, v, radius)
    target = torch.as_tensor(lookat, dtype=origins.dtype, device=origins.device).reshape(1, 3)
    return create_cam2world_matrix(target - origins, origins)


def gaussian_angles(mean: float, std: float, n: int, generator: torch.Generator | None = None) -> Tensor:
    """[n] float64 angles ~ N(mean, std) (EG3D's Gaussian/LookAt samplers)."""
    return torch.randn(n, generator=generator, dtype=torch.float64) * std + mean


def uniform_angles(mean: float, std: float, n: int, generator: torch.Generator | None = None) -> Tensor:
    """[n] float64 angles ~ U[mean - std, mean + std] (EG3D's UniformCameraPoseSampler)."""
    return (torch.rand(n, generator=generator, dtype=torch.float64) * 2 - 1) * std + mean


def lookat_pose(
    h_mean: float,
    v_mean: float,
    lookat: Sequence[float] | Tensor = (0.0, 0.0, 0.0),
    h_std: float = 0.0,
    v_std: float = 0.0,
    radius: float = 2.7,
    batch: int = 1,
    generator: torch.Generator | None = None,
) -> Tensor:
    """EG3D `LookAtPoseSampler`: h ~ N(h_mean, h_std), v ~ N(v_mean, v_std); returns [B, 4, 4] cam2world."""
    h = gaussian_angles(h_mean, h_std, batch, generator)
    v = gaussian_angles(v_mean, v_std, batch, generator)
    return lookat_cam2world(h, v, radius, lookat).float()


def gaussian_pose(
    h_mean: float,
    v_mean: float,
    h_std: float = 0.0,
    v_std: float = 0.0,
    radius: float = 1.0,
    batch: int = 1,
    generator: torch.Generator | None = None,
) -> Tensor:
    """EG3D `GaussianCameraPoseSampler`: Gaussian (h, v), camera looks at the origin; [B, 4, 4] cam2world."""
    return lookat_pose(h_mean, v_mean, (0.0, 0.0, 0.0), h_std, v_std, radius, batch, generator)


def uniform_pose(
    h_mean: float,
    v_mean: float,
    h_std: float = 0.0,
    v_std: float = 0.0,
    radius: float = 1.0,
    batch: int = 1,
    generator: torch.Generator | None = None,
) -> Tensor:
    """EG3D `UniformCameraPoseSampler`: h ~ U[h_mean - h_std, h_mean + h_std] (same for v), looks at the origin."""
    h = uniform_angles(h_mean, h_std, batch, generator)
    v = uniform_angles(v_mean, v_std, batch, generator)
    return lookat_cam2world(h, v, radius).float()


def frontal_camera(radius: float = 2.7, focal: float = 4.2647, lookat: Sequence[float] = (0.0, 0.0, 0.0)) -> Cameras:
    """The canonical frontal camera LookAt(pi/2, pi/2): at (0, 0, radius) looking at `lookat`."""
    c2w = lookat_cam2world(torch.tensor([math.pi / 2]), torch.tensor([math.pi / 2]), radius, lookat).float()
    return Cameras.from_matrices(c2w, focal)


def _normalize(v: Tensor) -> Tensor:
    return v / v.norm(dim=-1, keepdim=True).clamp_min(1e-12)
