"""Head pose from 2D landmarks by PnP against a 3D mean face, and the EG3D camera label it implies."""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from ...cameras.conventions import FFHQ_FOCAL, FFHQ_RADIUS
from .align import LM3D_STD
from .backends import Face, _package_dir

OPENCV_PIP = "pip install opencv-python-headless==4.14.0.94"
INSIGHTFACE_PIP = "pip install --no-deps insightface==2.1"
#: The shipped 68-point mean face (MediaPipe canonical face model, Apache-2.0; see data/README.md).
MEAN_FACE_68 = Path(__file__).with_name("data") / "mean_face_68.json"
SHAPES = ("auto", "mediapipe68", "meanshape68", "bfm5")
#: Model frame (OpenCV-like: x right, y down, z into the head) <-> head/world frame (x right, y up, z out of the
#: face, EG3D's world): p_model = D p_world with D = diag(1, -1, -1) (its own inverse).
_D = np.diag([1.0, -1.0, -1.0])


@dataclass(frozen=True)
class MeanShape:
    """A 3D mean face in the model frame (x to the image right, y down, z into the head; frontal face = identity).

    Attributes:
        name: 'mediapipe68', 'meanshape68' or 'bfm5'.
        points: [N, 3] 3D points.
        point_ids: iBUG-68 index of each point, or None for 'bfm5' (its points are `Face.lm5`).
        source: where the numbers come from (and their licence), recorded in reports.
    """

    name: str
    points: np.ndarray
    point_ids: tuple[int, ...] | None
    source: str

    def correspondences(self, face: Face) -> tuple[np.ndarray, np.ndarray]:
        """(2D points [M, 2] in the photo, 3D points [M, 3]) for the landmarks this face and this shape share."""
        if self.point_ids is None:
            return np.asarray(face.lm5, dtype=np.float64), self.points
        lookup = {pid: i for i, pid in enumerate(face.point_ids)}
        common = [(lookup[pid], j) for j, pid in enumerate(self.point_ids) if pid in lookup]
        img = np.asarray(face.points, dtype=np.float64)[[i for i, _ in common]]
        return img, self.points[[j for _, j in common]]


@cache
def mean_shape(name: str = "auto") -> MeanShape:
    """Load a mean shape: 'mediapipe68' (the shipped 68-point mean face, MediaPipe's canonical face model), 'auto'
    (= mediapipe68), 'meanshape68' (insightface's 68-point mean face, needs the insightface wheel's data; optional)
    or 'bfm5' (Deep3DFaceRecon's 5-point BFM template, built in)."""
    if name in ("auto", "mediapipe68"):
        doc = json.loads(MEAN_FACE_68.read_text())
        src = doc["source"]
        return MeanShape("mediapipe68", np.asarray(doc["points"], dtype=np.float64).reshape(68, 3), tuple(range(68)),
                         f"MediaPipe {src['tag']} canonical_face_model.obj, 68 iBUG points "
                         f"(gan3dkit/prepare/faces/data/mean_face_68.json; Apache-2.0)")
    if name == "meanshape68":
        root = _package_dir("insightface")
        path = root / "data" / "objects" / "meanshape_68.pkl" if root else None
        if path is None or not path.exists():
            raise FileNotFoundError(f"the 'meanshape68' mean face comes from the insightface wheel's data: "
                                    f"{INSIGHTFACE_PIP}  (or use the shipped default, --pose-shape auto)")
        with open(path, "rb") as f:
            pts = np.asarray(pickle.load(f), dtype=np.float64).reshape(68, 3)  # x right, y down, z to viewer
        return MeanShape("meanshape68", pts * np.array([1.0, 1.0, -1.0]), tuple(range(68)),
                         "insightface 2.1 data/objects/meanshape_68.pkl (wheel metadata gives no licence; "
                         "insightface code is MIT, its unlicensed models non-commercial: research only)")
    if name == "bfm5":
        return MeanShape("bfm5", LM3D_STD * np.array([1.0, -1.0, -1.0]), None,
                         "Deep3DFaceRecon lm3d_std (5 points of the Basel Face Model mean, BFM non-commercial terms)")
    raise ValueError(f"unknown mean shape {name!r}; choose {', '.join(SHAPES)}")


@dataclass(frozen=True)
class HeadPose:
    """PnP result. `rotation` [3, 3] (cv2.Rodrigues of solvePnP's rvec) maps model-frame points into the OpenCV
    camera of the aligned crop: p_cam = rotation @ p_model + translation. No Euler angles are taken from it:
    the angles gan3dkit stores are the orbit_v1 (yaw, pitch, roll) of the camera `camera_from_head_rotation`
    builds, via `cam2world_to_ypr` (yaw > 0: camera toward +x, the subject's left cheek, nose pointing to the
    image left; pitch > 0: camera above the face). `error_px` is the mean reprojection error in crop pixels."""

    rotation: np.ndarray
    translation: np.ndarray
    error_px: float
    points: int


def solve_head_pose(points2d: np.ndarray, points3d: np.ndarray, size: int, focal: float = FFHQ_FOCAL) -> HeadPose:
    """PnP for landmarks `points2d` [N, 2] (pixel indices of a `size`-pixel crop) against `points3d` [N, 3].

    The camera is the one the EG3D label describes: normalised focal `focal`, principal point at the crop centre,
    no distortion. SQPnP (global) then Levenberg-Marquardt refinement; needs N >= 4.
    """
    try:
        import cv2
    except ImportError as exc:
        raise ImportError(f"head pose needs OpenCV's solvePnP: {OPENCV_PIP}") from exc
    if len(points2d) < 4:
        raise ValueError(f"head pose needs at least 4 landmarks, got {len(points2d)}")
    obj = np.ascontiguousarray(points3d, dtype=np.float64).reshape(-1, 1, 3)
    img = np.ascontiguousarray(np.asarray(points2d, dtype=np.float64) + 0.5).reshape(-1, 1, 2)  # pixel centres
    k = np.array([[focal * size, 0.0, size / 2], [0.0, focal * size, size / 2], [0.0, 0.0, 1.0]])
    ok, rvec, tvec = cv2.solvePnP(obj, img, k, None, flags=cv2.SOLVEPNP_SQPNP)
    if not ok:
        raise ValueError("PnP failed for these landmarks")
    rvec, tvec = cv2.solvePnPRefineLM(obj, img, k, None, rvec, tvec)
    proj, _ = cv2.projectPoints(obj, rvec, tvec, k, None)
    err = float(np.linalg.norm(proj.reshape(-1, 2) - img.reshape(-1, 2), axis=1).mean())
    rot, _ = cv2.Rodrigues(rvec)
    if tvec.reshape(-1)[2] <= 0:
        raise ValueError("PnP put the face behind the camera")
    return HeadPose(rotation=rot, translation=tvec.reshape(3), error_px=err, points=len(points2d))


def camera_from_head_rotation(rotation: np.ndarray, radius: float = FFHQ_RADIUS,
                              focal: float = FFHQ_FOCAL) -> np.ndarray:
    """The 25-float EG3D label [25] (float64) of a camera that sees the head with PnP rotation `rotation` [3, 3].

    World = head frame (y up, face toward +z; EG3D's FFHQ world). With p_model = D p_world, D = diag(1, -1, -1):
    world2cam rotation = rotation @ D, so cam2world rotation = D @ rotation^T. The camera is placed on its own
    optical axis at `radius` from the origin (origin = -radius * forward), i.e. it looks at the head centre, as
    EG3D's labels do after `fix_pose_orig` (position normalised to 2.7); PnP's translation is not used, so the label
    does not depend on where the mean shape's origin is. Intrinsics [[f, 0, 0.5], [0, f, 0.5], [0, 0, 1]].
    A frontal face (rotation = I) gives cam2world diag(1, -1, -1) at (0, 0, radius).
    """
    c2w = np.eye(4)
    c2w[:3, :3] = _D @ np.asarray(rotation, dtype=np.float64).T
    c2w[:3, 3] = -radius * c2w[:3, 2]
    k = np.array([[focal, 0.0, 0.5], [0.0, focal, 0.5], [0.0, 0.0, 1.0]])
    return np.concatenate([c2w.reshape(-1), k.reshape(-1)])
