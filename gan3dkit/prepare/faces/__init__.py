"""Faces: EG3D's FFHQ crop (Deep3DFaceRecon alignment), landmark backends, PnP head pose and the face datasets."""

from .align import LM3D_STD, CropSpec, FaceCrop, crop_box, five_from_68, template_eye_positions, warp_crop
from .backends import BACKENDS, BackendError, Face, load_backend, resolve_backend
from .pose import HeadPose, MeanShape, camera_from_head_rotation, mean_shape, solve_head_pose

__all__ = ["BACKENDS", "LM3D_STD", "BackendError", "CropSpec", "Face", "FaceCrop", "HeadPose", "MeanShape",
           "camera_from_head_rotation", "crop_box", "five_from_68", "load_backend", "mean_shape", "resolve_backend",
           "solve_head_pose", "template_eye_positions", "warp_crop"]
