"""Latent editing: GANSpace components of W, edits by component and layer range, the tri-plane-offset edit."""

from .edits import (
    EDIT_MODES,
    Edit,
    apply_edit,
    load_delta_planes,
    load_latent,
    parse_edit,
    triplane_offset_edit,
)
from .ganspace import GanSpace, GanSpaceConfig, compute_ganspace, generator_hash, load_ganspace, pca, save_ganspace
from .pictures import component_sheet, edit_grid, edit_orbit

__all__ = [
    "EDIT_MODES",
    "Edit",
    "GanSpace",
    "GanSpaceConfig",
    "apply_edit",
    "component_sheet",
    "compute_ganspace",
    "edit_grid",
    "edit_orbit",
    "generator_hash",
    "load_delta_planes",
    "load_ganspace",
    "load_latent",
    "parse_edit",
    "pca",
    "save_ganspace",
    "triplane_offset_edit",
]
