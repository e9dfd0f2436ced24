"""Browser camera <-> EG3D camera: viser's pose and vertical FOV to a square 25-float label, and back."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import numpy as np
import torch

from ..cameras.camera import Cameras
from ..cameras.rotations import quaternion_to_matrix
from ..generate.views import view_cameras

if TYPE_CHECKING:
    from ..networks.generator import TriPlaneGenerator


@dataclass(frozen=True)
class BrowserView:
    """What viser reports for a tab: the camera's world pose (OpenCV axes, as EG3D's cam2world), its vertical FOV
    (radians) and the canvas size in pixels."""

    wxyz: tuple[float, float, float, float]
    position: tuple[float, float, float]
    fov: float
    width: int
    height: int

    @property
    def aspect(self) -> float:
        return self.width / max(self.height, 1)


def square_focal(fov: float, aspect: float) -> float:
    """Normalised focal (fx / S) of the centred square of side S = min(W, H) in a canvas of vertical FOV `fov`."""
    focal_px_over_h = 0.5 / math.tan(fov / 2)  # f / H
    return focal_px_over_h * (1.0 if aspect >= 1 else 1.0 / aspect)  # S = H, or S = W = aspect * H


def fov_from_focal(focal: float) -> float:
    """Vertical FOV (radians) of a square image with normalised focal `focal` (a canvas as tall as the image)."""
    return 2 * math.atan(0.5 / focal)


def cameras_from_view(view: BrowserView) -> Cameras:
    """The EG3D camera of the centred square of the tab's canvas: cam2world [R(wxyz) | position], principal point at
    the centre, focal from the vertical FOV (viser's camera frame is OpenCV's: x right, y down, z forward)."""
    c2w = np.eye(4)
    c2w[:3, :3] = quaternion_to_matrix(torch.as_tensor(np.asarray(view.wxyz, dtype=np.float64))).numpy()
    c2w[:3, 3] = view.position
    focal = square_focal(view.fov, view.aspect)
    return Cameras.from_matrices(torch.from_numpy(c2w).float()[None], focal)


def label_from_view(view: BrowserView) -> torch.Tensor:  # -> [1, 25]
    """`cameras_from_view` as the 25-float label (the form a saved camera file holds)."""
    return cameras_from_view(view).to_label()


def pad_to_aspect(image: np.ndarray, aspect: float, fill: int = 0) -> np.ndarray:
    """Centre an [h, w, C] image (square, or panels side by side) in a canvas-shaped one (width / height = `aspect`)
    without scaling it: the canvas is as tall as the image, or as wide when the image is wider than the canvas."""
    h, w = image.shape[:2]
    if w / h <= aspect:
        out_h, out_w = h, max(w, round(h * aspect))
    else:
        out_h, out_w = max(h, round(w / aspect)), w
    if (out_h, out_w) == (h, w):
        return image
    out = np.full((out_h, out_w, *image.shape[2:]), fill, dtype=image.dtype)
    top, left = (out_h - h) // 2, (out_w - w) // 2
    out[top : top + h, left : left + w] = image
    return out


@dataclass(frozen=True)
class Pose:
    """A browser camera to set: position, look-at point, up direction (world +y), vertical FOV (radians)."""

    position: tuple[float, float, float]
    look_at: tuple[float, float, float]
    fov: float
    up: tuple[float, float, float] = (0.0, 1.0, 0.0)


def pose_from_label(label: Cameras | torch.Tensor, look_at: tuple[float, float, float]) -> Pose:
    """The browser pose of a camera (an EG3D label [1, 25], e.g. a file's, or `Cameras`): its position, looking along
    its forward axis at the depth of `look_at`, with the FOV of its focal (roll is dropped: the browser's orbit
    controls keep +y up)."""
    cams = label if isinstance(label, Cameras) else Cameras.from_label(label)
    cams = cams.detach().to("cpu", torch.float64)
    pos = cams.origins[0].numpy()
    fwd = cams.forward[0].numpy()
    dist = float(np.linalg.norm(np.asarray(look_at) - pos)) or 1.0
    target = pos + fwd * dist
    return Pose(tuple(pos.tolist()), tuple(target.tolist()), fov_from_focal(float(cams.focal[0, 1])))


def eg3d_pose(G: TriPlaneGenerator, yaw: float = 0.0, pitch: float = 0.0) -> Pose:
    """The browser pose of EG3D's (yaw, pitch) camera around the generator's pivot and radius (frontal = 0, 0)."""
    r = G.config.rendering
    pivot = cast("tuple[float, float, float]", tuple(r.avg_camera_pivot))
    return pose_from_label(view_cameras(G, [yaw], pitch, torch.device("cpu")), pivot)


def yaw_pitch_radius(view: BrowserView, pivot: tuple[float, float, float]) -> tuple[float, float, float]:
    """EG3D (yaw, pitch) offsets from frontal (the inverse of `eg3d_positions`) and the camera's distance from the
    pivot, for display."""
    d = np.asarray(view.position) - np.asarray(pivot)
    radius = float(np.linalg.norm(d)) or 1e-9
    yaw = math.atan2(d[0], d[2])
    pitch = -math.pi / 2 * max(-1.0, min(1.0, d[1] / radius))  # EG3D: elevation = asin(-2 pitch / pi)
    return yaw, pitch, radius
