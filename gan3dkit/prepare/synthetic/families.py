"""The synthetic families' API: parameters, scenes, batch rendering and the implicit surface of heads and cars."""

from __future__ import annotations

from types import ModuleType

import torch
from torch import Tensor

from ...cameras.camera import Cameras
from . import heads, objects
from .primitives import group_implicit
from .render import render_scene
from .scene import Scene

FAMILIES = ("heads", "objects")
_MODULES: dict[str, ModuleType] = {"heads": heads, "objects": objects}
_PRIORS = {"heads": "synthetic_heads", "objects": "synthetic_objects"}


def _family(family: str) -> ModuleType:
    if family not in _MODULES:
        raise ValueError(f"unknown synthetic family {family!r}; choose one of {', '.join(FAMILIES)}")
    return _MODULES[family]


def default_prior(family: str) -> str:
    """The pose prior preset a family is rendered with by default ("synthetic_heads" / "synthetic_objects")."""
    _family(family)
    return _PRIORS[family]


def param_names(family: str) -> list[str]:
    """Names of the scene parameter vector's entries (the stored latent), in order."""
    return _family(family).PARAMS.names


def sample_params(family: str, n: int, generator: torch.Generator | None = None, symmetric: bool = False) -> Tensor:
    """[n, D] float32 scene parameters, each uniform in its range (see `param_names`).

    symmetric=True zeroes every entry that breaks the x-mirror symmetry (marks, earring, swept hair, fuel flap, the
    light's x component), so the scenes are exactly mirror-symmetric.
    """
    return _family(family).PARAMS.sample(n, generator, symmetric)


def build_scene(family: str, params: Tensor) -> Scene:
    """The primitives, light, background and texture of B scenes from parameters [B, D]."""
    return _family(family).build_scene(params.float())


def render_batch(family: str, params: Tensor, cameras: Cameras, resolution: int, ssaa: int = 2) -> dict[str, Tensor]:
    """Render B scenes [B, D] seen by B cameras at resolution x resolution.

    Each scene is a handful of convex primitives (ellipsoids, boxes, cylinders, optionally clipped by planes)
    intersected analytically and in batch ([B scenes, K primitives, n rays], nearest hit wins), shaded with
    per-primitive albedo and procedural texture x (ambient + Lambert + a small Blinn-Phong highlight) under one
    directional light per scene; see `heads.build_scene` / `objects.build_scene` for the layouts. Example:

        params = sample_params("heads", 8, torch.Generator().manual_seed(0))
        cams = get_prior(default_prior("heads")).sample(8, torch.Generator().manual_seed(1))
        out = render_batch("heads", params, cams, resolution=64)

    Returns:
        image: uint8 [B, H, W, 3] (colour supersampled ssaa x ssaa per pixel);
        depth: float32 [B, H, W], Euclidean distance along the unit pixel-centre ray of `ray_bundle`, +inf where it
            hits nothing;
        mask: bool [B, H, W], True where the pixel-centre ray hits the object.
    """
    if params.ndim != 2 or params.shape[0] != len(cameras):
        raise ValueError(f"params must be [B, D] with B = {len(cameras)} cameras, got {tuple(params.shape)}")
    if resolution < 1 or ssaa < 1:
        raise ValueError(f"resolution and ssaa must be >= 1, got {resolution}, {ssaa}")
    return render_scene(build_scene(family, params), cameras.to(torch.float32), resolution, ssaa)


@torch.no_grad()
def implicit(family: str, params: Tensor, points: Tensor) -> Tensor:
    """Implicit of the scenes [B, D] at world points [B, N, 3] -> [B, N]: < 0 inside, ~0 on the surface, > 0 outside.

    Per primitive, the largest constraint value in its local unit frame (e.g. |p| - 1) times its shortest semi-axis;
    the scene is the minimum over primitives. Near the surface |implicit| <= the world distance to it.
    """
    scene = build_scene(family, params)
    return torch.stack([group_implicit(g, points.float()) for g in scene.groups], dim=0).min(dim=0).values
