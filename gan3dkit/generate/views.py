"""Multi-view grids: each seed rendered from several yaw angles, with its depth maps (EG3D gen_samples views)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..cameras.camera import Cameras
from ..cameras.samplers import lookat_cam2world
from ..utils.errors import UsageError
from ..utils.visual import depth_to_rgb, make_grid, to_uint8_hwc

if TYPE_CHECKING:
    from ..networks.generator import TriPlaneGenerator


def parse_seeds(text: str) -> list[int]:
    """'0-3,7' -> [0, 1, 2, 3, 7] (EG3D's seed syntax); seeds are non-negative."""
    seeds: list[int] = []
    try:
        for part in filter(None, (p.strip() for p in text.split(","))):
            lo, _, hi = part.partition("-")
            seeds += list(range(int(lo), int(hi) + 1)) if hi else [int(lo)]
    except ValueError:
        raise UsageError(f"--seeds: cannot parse {text!r} (use e.g. 0-7 or 1,5,9)") from None
    if not seeds:
        raise UsageError(f"--seeds: no seeds in {text!r} (use e.g. 0-7 or 1,5,9)")
    return seeds


def seed_latent(G: TriPlaneGenerator, seed: int) -> torch.Tensor:  # -> [1, z_dim]
    """z of a seed, as EG3D's gen_samples draws it (numpy RandomState(seed).randn)."""
    return torch.from_numpy(np.random.RandomState(seed).randn(1, G.z_dim)).float()


def view_cameras(G: TriPlaneGenerator, yaws: list[float], pitch: float, device: torch.device | str) -> Cameras:
    """V cameras at EG3D angles (pi/2 + yaw, pi/2 + pitch) around the generator's pivot and radius."""
    r = G.config.rendering
    h = torch.tensor([math.pi / 2 + y for y in yaws], dtype=torch.float64)
    v = torch.full_like(h, math.pi / 2 + pitch)
    c2w = lookat_cam2world(h, v, r.avg_camera_radius, r.avg_camera_pivot).float()
    return Cameras.from_matrices(c2w, r.focal).to(device)


@torch.no_grad()
def render_views(
    G: TriPlaneGenerator,
    seeds: list[int],
    yaws: tuple[float, ...] = (0.4, 0.0, -0.4),
    pitch: float = -0.2,
    psi: float = 1.0,
    nrr: int | None = None,
    centers: list[tuple[float, float]] | None = None,
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Render every seed at each yaw (EG3D gen_samples: yaw +-0.4, pitch -0.2, frontal conditioning camera).

    `centers` gives each seed's own (yaw, pitch) offsets from frontal, added to `yaws` and `pitch` (e.g. the pose a
    learned-pose generator picks for it, `generate.poses.seed_pose_centers`); None = frontal for every seed.
    Returns a grid (one row per seed: the RGB views, then their depth maps, near = bright) and per-seed arrays.
    """
    device = next(G.parameters()).device
    cams = view_cameras(G, list(yaws), pitch, device)
    cond = view_cameras(G, [0.0], 0.0, device).to_label()
    rows, per_seed = [], []
    for i, seed in enumerate(seeds):
        if centers is not None:
            cy, cp = centers[i]
            cams = view_cameras(G, [cy + y for y in yaws], cp + pitch, device)
        z = seed_latent(G, seed).to(device)
        ws = G.mapping(z, cond, truncation_psi=psi)
        out = G.synthesis(ws.expand(len(yaws), -1, -1), cams, neural_rendering_resolution=nrr)
        rgb = to_uint8_hwc(out["image"])
        depth = (
            torch.nn.functional.interpolate(out["image_depth"], size=rgb.shape[1], mode="nearest")[:, 0].cpu().numpy()
        )
        lo, hi = float(depth.min()), float(depth.max())
        dep = [depth_to_rgb(d, lo=lo, hi=hi) for d in depth]
        rows += list(rgb) + dep
        per_seed.append({"seed": seed, "rgb": rgb, "depth": depth})
    return make_grid(rows, 2 * len(yaws)), per_seed
