"""Rendering: camera rays (EG3D convention); the volume renderer builds on these."""

from .rays import pixel_centers, ray_bundle

__all__ = ["pixel_centers", "ray_bundle"]
