"""Focal length <-> field of view, with the FOV convention named in every function, and EG3D constants."""

from __future__ import annotations

import math

#: EG3D FFHQ / AFHQ normalised focal length (= 2985.29 / 700, see reference eg3d.md §2.3).
FFHQ_FOCAL = 4.2647
#: EG3D ShapeNet-cars normalised focal length ("45 degrees" diagonal).
SHAPENET_FOCAL = 1.7074
#: EG3D FFHQ camera radius and look-at pivot.
FFHQ_RADIUS = 2.7
FFHQ_PIVOT = (0.0, 0.0, 0.2)
#: The FOV EG3D quotes for FFHQ. It is a *diagonal* FOV; the exact diagonal FOV of focal 4.2647 is 18.8285 degrees
#: and EG3D's own FOV_to_intrinsics (rounded pi and sqrt 2) turns 18.837 into 4.2634. Store the focal, not the FOV.
FFHQ_DIAGONAL_FOV_DEG = 18.837


def focal_from_diagonal_fov(fov_deg: float) -> float:
    """Normalised focal (fx/W) for a *diagonal* FOV in degrees on a square image: f = 1 / (sqrt(2) * tan(fov / 2)).

    This is EG3D's `FOV_to_intrinsics` convention computed with exact pi and sqrt(2).
    """
    _check_fov(fov_deg)
    return 1.0 / (math.sqrt(2.0) * math.tan(math.radians(fov_deg) / 2.0))


def diagonal_fov_from_focal(focal: float) -> float:
    """Diagonal FOV in degrees of a square image with normalised focal `focal` (inverse of focal_from_diagonal_fov)."""
    _check_focal(focal)
    return math.degrees(2.0 * math.atan(1.0 / (math.sqrt(2.0) * focal)))


def focal_from_horizontal_fov(fov_deg: float) -> float:
    """Normalised focal (fx/W) for a *horizontal* FOV in degrees: f = 1 / (2 * tan(fov / 2))."""
    _check_fov(fov_deg)
    return 1.0 / (2.0 * math.tan(math.radians(fov_deg) / 2.0))


def horizontal_fov_from_focal(focal: float) -> float:
    """Horizontal FOV in degrees for normalised focal `focal` (inverse of `focal_from_horizontal_fov`)."""
    _check_focal(focal)
    return math.degrees(2.0 * math.atan(0.5 / focal))


def _check_fov(fov_deg: float) -> None:
    if not (0.0 < fov_deg < 180.0):
        raise ValueError(f"field of view must be in (0, 180) degrees, got {fov_deg}")


def _check_focal(focal: float) -> None:
    if not (focal > 0.0 and math.isfinite(focal)):
        raise ValueError(f"normalised focal length must be positive and finite, got {focal}")
