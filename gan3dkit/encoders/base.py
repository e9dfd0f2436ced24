"""What every encoder returns (tri-planes, optional ws and pose), the optional pose head, and pose <-> camera."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from torch import Tensor, nn

from ..cameras.camera import Cameras
from ..cameras.rotations import cam2world_to_ypr, ypr_to_cam2world

if TYPE_CHECKING:
    from ..networks.generator import TriPlaneGenerator


@dataclass
class EncoderOutput:
    """planes [B, 3, C, R, R]; ws [B, num_ws, w_dim] (W+ encoders) or None; pose [B, 3] (yaw, pitch, roll) or None;
    base: TriPlaneNet's first-branch planes G(w+) (gradients reach the W+ branch through them) or None."""

    planes: Tensor
    ws: Tensor | None = None
    pose: Tensor | None = None
    base: Tensor | None = None


@dataclass(frozen=True)
class CameraModel:
    """How a (yaw, pitch, roll) pose becomes an EG3D camera for one generator: radius, look-at pivot, focal."""

    radius: float
    lookat: tuple[float, float, float]
    focal: float

    @classmethod
    def from_generator(cls, G: TriPlaneGenerator) -> CameraModel:
        r = G.config.rendering
        lookat = cast("tuple[float, float, float]", tuple(float(v) for v in r.avg_camera_pivot))
        return cls(float(r.avg_camera_radius), lookat, float(r.focal))

    def cameras(self, pose: Tensor) -> Cameras:  # [B, 3] orbit (yaw, pitch, roll) -> B cameras
        p = pose.detach().double().cpu()
        c2w = ypr_to_cam2world(p[:, 0], p[:, 1], p[:, 2], self.radius, self.lookat).float()
        return Cameras.from_matrices(c2w, self.focal).to(pose.device)

    def pose(self, cams: Cameras | Tensor) -> Tensor:  # B cameras ([B, 25] labels) -> [B, 3]; inverse of `cameras`
        c = cams if isinstance(cams, Cameras) else Cameras.from_label(cams)
        return cam2world_to_ypr(c.cam2world.detach().cpu().double()).float().to(c.device)


class InputPoseHead(nn.Module):
    """gan3dkit addition (not in LP3D or TriPlaneNet): pooled features -> (yaw, pitch, roll) of the input camera.

    LP3D estimates input poses with an off-the-shelf estimator for evaluation and video; distillation knows the true
    pose, so a two-layer head learns it for free and lets ``encode`` render the input view and smooth poses over a
    video without a face detector. ``pose_head: false`` in an arch config removes it.
    """

    def __init__(self, channels: int, hidden: int = 128) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(channels, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, 3))
        last = cast(nn.Linear, self.net[2])
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)

    def forward(self, feats: Tensor) -> Tensor:  # [B, C, h, w] -> [B, 3]
        return self.net(feats.mean(dim=(2, 3)))
