"""Meshes from the generator's density field: sigma on a grid -> scikit-image marching cubes -> binary PLY."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from .views import view_cameras

if TYPE_CHECKING:
    from ..networks.generator import TriPlaneGenerator
    from ..render.volume import ImportanceRenderer


@torch.no_grad()
def density_grid(G: TriPlaneGenerator, ws: torch.Tensor, resolution: int = 128, chunk: int = 1 << 18,
                 noise_mode: str = "const") -> np.ndarray:  # fmt: skip
    """Raw sigma of G(ws[:1]) on a resolution^3 grid over the triplane box, [x, y, z]: the planes are synthesised
    once (constant noise, as EG3D's shape export in gen_samples.py) and sampled by `planes_density_grid`."""
    return planes_density_grid(G.renderer, G.decoder, G.synthesize_planes(ws[:1], noise_mode=noise_mode), resolution,
                               chunk)


@torch.no_grad()
def planes_density_grid(renderer: ImportanceRenderer, decoder: torch.nn.Module, planes: torch.Tensor,
                        resolution: int = 128, chunk: int = 1 << 18) -> np.ndarray:  # fmt: skip
    """Raw sigma of given tri-planes [1, 3, C, R, R] on a resolution^3 grid over the box, [x, y, z] (no resynthesis)."""
    half = renderer.config.box_warp / 2
    lin = torch.linspace(-half, half, resolution, device=planes.device)
    coords = torch.stack(torch.meshgrid(lin, lin, lin, indexing="ij"), -1).reshape(1, -1, 3)
    sigma = renderer.sample_points(planes[:1], decoder, coords, chunk=chunk)["sigma"]
    return sigma.reshape(resolution, resolution, resolution).cpu().numpy()


def surface_mesh(grid: np.ndarray, box_warp: float, level: float | None = 10.0,
                 border_fraction: float = 30 / 256) -> tuple[np.ndarray, np.ndarray, float]:  # fmt: skip
    """(vertices [V, 3] in world units, faces [F, 3], level used) of the sigma = `level` surface of a density grid.

    EG3D/ChimeraX use level 10. `level=None` ("auto") uses 10 when the field reaches it, else the 99th percentile
    of sigma in the box (short trainings rarely reach 10); the level used is returned so callers can report it.
    As EG3D's shape export, a border of int(border_fraction * N) voxels is set to -1000 so the surface closes.
    """
    from skimage.measure import marching_cubes

    grid = grid.copy()
    resolution = grid.shape[0]
    pad = int(border_fraction * resolution)
    if pad > 0:
        grid[:pad], grid[-pad:], grid[:, :pad], grid[:, -pad:], grid[:, :, :pad], grid[:, :, -pad:] = (-1000,) * 6
    if level is None:
        level = 10.0 if grid.max() > 10.0 else float(np.percentile(grid[grid > -1000], 99))
    if not (grid.min() < level < grid.max()):
        raise ValueError(
            f"no surface at level {level}: sigma ranges over [{grid.min():.3g}, {grid.max():.3g}] "
            "(an untrained generator may have none; try --mesh-level auto)"
        )
    verts, faces, _, _ = marching_cubes(grid, level=level)
    half = box_warp / 2
    verts = verts / (resolution - 1) * (2 * half) - half
    return verts.astype(np.float32), faces.astype(np.int32), float(level)


def extract_mesh(
    G: TriPlaneGenerator,
    seed: int,
    resolution: int = 128,
    level: float | None = 10.0,
    psi: float = 1.0,
    border_fraction: float = 30 / 256,
) -> tuple[np.ndarray, np.ndarray, float]:
    """(vertices, faces, level used) of seed's sigma = `level` surface (see `surface_mesh`), frontal conditioning."""
    device = next(G.parameters()).device
    z = torch.from_numpy(np.random.RandomState(seed).randn(1, G.z_dim)).float().to(device)
    ws = G.mapping(z, view_cameras(G, [0.0], 0.0, device).to_label(), truncation_psi=psi)
    grid = density_grid(G, ws, resolution)
    return surface_mesh(grid, G.config.rendering.box_warp, level, border_fraction)


def write_ply(path: str | Path, verts: np.ndarray, faces: np.ndarray) -> Path:
    """Binary little-endian PLY with float vertices and int triangle lists."""
    path = Path(path)
    header = (
        f"ply\nformat binary_little_endian 1.0\nelement vertex {len(verts)}\nproperty float x\n"
        f"property float y\nproperty float z\nelement face {len(faces)}\nproperty list uchar int vertex_indices\n"
        "end_header\n"
    ).encode()
    face_rec = np.empty(len(faces), dtype=[("n", "u1"), ("idx", "<i4", (3,))])
    face_rec["n"], face_rec["idx"] = 3, faces
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(header)
        f.write(verts.astype("<f4").tobytes())
        f.write(face_rec.tobytes())
    return path
