"""Rendering: camera rays (EG3D convention) and the tri-plane volume renderer built on them."""

from .rays import pixel_centers, ray_bundle
from .volume import FieldDecoder, ImportanceRenderer, RenderingConfig, RenderOutput

__all__ = ["FieldDecoder", "ImportanceRenderer", "RenderOutput", "RenderingConfig", "pixel_centers", "ray_bundle"]
