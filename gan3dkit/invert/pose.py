"""Learnable camera for pose optimisation: rotation (euler/quaternion/6D) + translation renormalised to the radius."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..cameras.camera import Cameras, as_cameras
from ..cameras.rotations import (
    cam2world_to_ypr,
    matrix_to_rotation_6d,
    quaternion_to_matrix,
    rotation_6d_to_matrix,
)
from ..cameras.samplers import create_cam2world_matrix


def matrix_to_quaternion(r: Tensor) -> Tensor:  # [B, 3, 3] -> [B, 4] (w, x, y, z), Shepperd's method
    out = []
    for m in r.reshape(-1, 3, 3):
        tr = m[0, 0] + m[1, 1] + m[2, 2]
        if tr > 0:
            s = (tr + 1).sqrt() * 2
            q = [0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s]
        elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
            s = (1 + m[0, 0] - m[1, 1] - m[2, 2]).sqrt() * 2
            q = [(m[2, 1] - m[1, 2]) / s, 0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s]
        elif m[1, 1] > m[2, 2]:
            s = (1 + m[1, 1] - m[0, 0] - m[2, 2]).sqrt() * 2
            q = [(m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s]
        else:
            s = (1 + m[2, 2] - m[0, 0] - m[1, 1]).sqrt() * 2
            q = [(m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s]
        out.append(torch.stack(q))
    return torch.stack(out)


def euler_to_rotation(yaw: Tensor, pitch: Tensor) -> Tensor:  # [B] x2 -> [B, 3, 3] cam2world rotation, no roll
    """Rotation of a camera at orbit angles (yaw, pitch) looking at its pivot (data_specs orbit_v1)."""
    forward = -torch.stack([torch.cos(pitch) * torch.sin(yaw), torch.sin(pitch), torch.cos(pitch) * torch.cos(yaw)], -1)
    return create_cam2world_matrix(forward, torch.zeros_like(forward))[:, :3, :3]


def rotation_geodesic(a: Tensor, b: Tensor) -> Tensor:  # [B, 3, 3] x2 -> [B] radians
    """Angle of a^T b (the geodesic distance on SO(3)), atan2(sin, cos) so that tiny angles stay accurate."""
    m = a.transpose(-1, -2) @ b
    cos = (m.diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2
    vee = torch.stack([m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]], -1)
    return torch.atan2(vee.norm(dim=-1) / 2, cos)


class LearnableCamera(nn.Module):
    """B cameras from free parameters (seed 002 §A.1); ``forward`` returns ``Cameras`` (no label round trip).

    rotation R (cam2world, OpenCV axes) from `representation`: 'euler' = (yaw, pitch) of a camera aimed at the pivot
    (the paper's theta / phi, no roll), 'quaternion' (Ko et al.'s code default) or '6d' (Zhou et al.; allows roll).
    Position: p = -r R[:, 2] + R t with the learnable camera-frame translation t, renormalised to the radius r about
    the world origin: origin = r p / |p| (Ko et al.: "added to -2.7 R[:, 2] and renormalized to radius 2.7"), so t
    nudges the viewpoint while the orientation stays R. EG3D's cameras sit on a sphere about the world origin and
    look at a pivot (FFHQ (0, 0, 0.2)); t starts at the value that reproduces the given label exactly, so the pivot
    is carried by t. Intrinsics are kept from the initial camera.
    """

    intrinsics: Tensor
    radius: Tensor

    def __init__(self, camera: Cameras | Tensor, representation: str = "euler", translation: bool = True) -> None:
        super().__init__()
        cams = as_cameras(camera).detach().to(torch.float32)
        self.representation = representation
        self.register_buffer("intrinsics", cams.intrinsics.clone())
        rel = cams.origins  # [B, 3]
        self.register_buffer("radius", rel.norm(dim=-1, keepdim=True))
        r = cams.rotations
        if representation == "euler":
            f = r[:, :, 2]
            self.params = nn.Parameter(
                torch.stack([torch.atan2(-f[:, 0], -f[:, 2]), torch.asin((-f[:, 1]).clamp(-1, 1))], -1)
            )
            r = euler_to_rotation(self.params[:, 0], self.params[:, 1]).detach()
        elif representation == "quaternion":
            self.params = nn.Parameter(matrix_to_quaternion(r))
        elif representation == "6d":
            self.params = nn.Parameter(matrix_to_rotation_6d(r))
        else:
            raise ValueError(f"unknown pose representation {representation!r}")
        # t reproduces the initial origin exactly: rel = -r f + R t  =>  t = R^T (rel + r f)
        t0 = (r.transpose(1, 2) @ (rel + self.radius * r[:, :, 2])[..., None])[..., 0]
        self.translation = nn.Parameter(t0, requires_grad=translation)

    def rotation(self) -> Tensor:  # [B, 3, 3]
        if self.representation == "euler":
            return euler_to_rotation(self.params[:, 0], self.params[:, 1])
        if self.representation == "quaternion":
            return quaternion_to_matrix(self.params)
        return rotation_6d_to_matrix(self.params)

    def forward(self) -> Cameras:
        r = self.rotation()
        p = -self.radius * r[:, :, 2] + (r @ self.translation[..., None])[..., 0]
        origin = self.radius * p / p.norm(dim=-1, keepdim=True).clamp_min(1e-9)
        bottom = torch.tensor([[[0.0, 0.0, 0.0, 1.0]]], dtype=r.dtype, device=r.device).expand(r.shape[0], 1, 4)
        c2w = torch.cat([torch.cat([r, origin[..., None]], 2), bottom], 1)  # [B, 4, 4]
        return Cameras(c2w, self.intrinsics)


class EncoderCamera(nn.Module):
    """Ko et al.'s pose variables: the weights of the pose estimator P itself, fine-tuned on one image, plus the
    learnable translation (same renormalisation as `LearnableCamera`). P runs in eval mode (BatchNorm statistics
    fixed; a single image is no batch)."""

    image: Tensor
    intrinsics: Tensor

    def __init__(self, estimator: nn.Module, image: Tensor, like: Cameras | Tensor, translation: bool = True) -> None:
        super().__init__()
        self.estimator = estimator.eval()
        self.register_buffer("image", image.detach())
        self.register_buffer("intrinsics", as_cameras(like).detach().to(torch.float32).intrinsics.clone())
        self.translation = nn.Parameter(torch.zeros(1, 3), requires_grad=translation)

    def forward(self) -> Cameras:  # one camera
        self.estimator.eval()
        r, pos = self.estimator(self.image)
        radius = pos.norm(dim=-1, keepdim=True)
        p = pos + (r @ self.translation[..., None])[..., 0]
        origin = radius * p / p.norm(dim=-1, keepdim=True).clamp_min(1e-9)
        bottom = torch.tensor([[[0.0, 0.0, 0.0, 1.0]]], dtype=r.dtype, device=r.device).expand(r.shape[0], 1, 4)
        return Cameras(torch.cat([torch.cat([r, origin[..., None]], 2), bottom], 1), self.intrinsics)


def _cpu64(camera: Cameras | Tensor) -> Cameras:  # float64 on the CPU for reports (a label keeps its precision)
    if isinstance(camera, Tensor):
        return Cameras.from_label(camera.detach().to("cpu", torch.float64))
    return camera.detach().to("cpu", torch.float64)


def pose_summary(camera: Cameras | Tensor) -> dict:
    """yaw / pitch / roll (radians, orbit_v1 of the camera position, as the datasets' `ypr`), radius and the label
    (the JSON edge) of one camera."""
    c2w = _cpu64(camera).cam2world
    ypr = cam2world_to_ypr(c2w)[0]
    label = as_cameras(camera).detach().to_label().reshape(-1)
    return {"yaw": float(ypr[0]), "pitch": float(ypr[1]), "roll": float(ypr[2]),
            "radius": float(c2w[0, :3, 3].norm()), "label": [float(v) for v in label]}


def pose_error(a: Cameras | Tensor, b: Cameras | Tensor) -> dict:
    """Rotation geodesic (degrees) and camera-centre distance between two single cameras."""
    ca, cb = _cpu64(a), _cpu64(b)
    geo = math.degrees(float(rotation_geodesic(ca.rotations, cb.rotations)[0]))
    return {"rotation_deg": geo, "center_dist": float((ca.origins - cb.origins).norm())}
