"""Cameras: typed batches, the 25-float EG3D label, EG3D pose samplers, FOV conventions, rotations, pose priors."""

from .camera import (
    LABEL_DIM,
    CameraError,
    Cameras,
    as_cameras,
    check_label,
    label_problems,
    mirror_labels,
)
from .conventions import (
    FFHQ_DIAGONAL_FOV_DEG,
    FFHQ_FOCAL,
    FFHQ_PIVOT,
    FFHQ_RADIUS,
    SHAPENET_FOCAL,
    diagonal_fov_from_focal,
    focal_from_diagonal_fov,
    focal_from_horizontal_fov,
    horizontal_fov_from_focal,
)
from .priors import AngleDist, PosePrior, get_prior, prior_names
from .rotations import (
    cam2world_to_ypr,
    eg3d_hv_to_yaw_pitch,
    matrix_to_rotation_6d,
    rotation_6d_to_matrix,
    yaw_pitch_to_eg3d_hv,
    ypr_to_cam2world,
)
from .samplers import (
    create_cam2world_matrix,
    eg3d_positions,
    frontal_camera,
    gaussian_pose,
    lookat_cam2world,
    lookat_pose,
    uniform_pose,
)

__all__ = [n for n in dir() if not n.startswith("_")]
