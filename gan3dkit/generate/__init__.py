"""Generation from trained checkpoints: multi-view grids with depth, orbit videos, meshes."""

from .loading import load_generator
from .mesh import extract_mesh, write_ply
from .video import orbit_cameras, render_video
from .views import parse_seeds, render_views

__all__ = [
    "extract_mesh",
    "load_generator",
    "orbit_cameras",
    "parse_seeds",
    "render_video",
    "render_views",
    "write_ply",
]
