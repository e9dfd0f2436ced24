"""Exports of the current view: the picture (PNG), its depth (.npy), a mesh (PLY) and an orbit video (GIF/MP4)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch

from ..cameras.camera import Cameras
from ..encoders.media import write_video
from ..generate.mesh import planes_density_grid, surface_mesh, write_ply
from ..generate.video import orbit_cameras
from ..utils.files import atomic_output, atomic_save_png, atomic_write_bytes
from .render import FrameRenderer, ViewSettings

EXPORTS = ("png", "depth", "mesh", "video")


def export_stem(settings: ViewSettings, kind: str) -> str:
    """A file name that says what was shown: 'seed0003_psi0p7_rgb' (+ edits), or the source kind; no dots, so
    suffixes can be added safely."""
    head = f"seed{settings.seed:04d}_psi{settings.psi:g}" if kind in ("generator", "run") else kind
    edits = "".join(f"_pc{c}{s:+g}@{a}-{b}" for c, s, a, b in settings.edits)
    return f"{head}{edits}_{settings.mode}".replace(".", "p")


def export_png(frames: FrameRenderer, s: ViewSettings, camera: Cameras | torch.Tensor, out: Path) -> Path:
    """The current view at full resolution (the trained neural rendering resolution, SR to the model's)."""
    return atomic_save_png(out, frames.render(s, camera).image)


def export_depth(frames: FrameRenderer, s: ViewSettings, camera: Cameras | torch.Tensor, out: Path) -> Path:
    """Ray distance per pixel [r, r] float32 (r = neural rendering resolution), as `invert` writes depth.npy."""
    buf = io.BytesIO()
    np.save(buf, frames.render(s, camera).depth.astype(np.float32))
    return atomic_write_bytes(out, buf.getvalue())


def export_mesh(frames: FrameRenderer, s: ViewSettings, camera: Cameras | torch.Tensor, out: Path,
                resolution: int = 128, level: float | None = None) -> tuple[Path, float]:  # fmt: skip
    """Marching cubes of the shown tri-planes (edits included) at sigma 10, or 'auto' (generate --mesh-level)."""
    planes, rend = frames.planes_for_export(s, camera)
    grid = planes_density_grid(rend.renderer, rend.decoder, planes, resolution)
    verts, faces, used = surface_mesh(grid, rend.renderer.config.box_warp, level)
    with atomic_output(out) as tmp:
        write_ply(tmp, verts, faces)
    return out, used


def export_video(frames: FrameRenderer, s: ViewSettings, out: Path, count: int = 48, fps: int = 24) -> list[Path]:
    """EG3D's orbit (generate.video.orbit_cameras) of the current settings, as <out>.gif (+ .mp4 when possible)."""
    cams = orbit_cameras(frames.source.G, count, frames.device)
    pictures = [frames.render(s, cams[i : i + 1]).image for i in range(count)]
    return write_video(pictures, out, fps)


def run_export(what: str, frames: FrameRenderer, s: ViewSettings, camera: Cameras | torch.Tensor,
               folder: Path) -> list[Path]:  # fmt: skip
    """Write one export into `folder`; returns the files written (raises ValueError with a reason)."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / export_stem(s, frames.source.kind)
    if what == "png":
        return [export_png(frames, s, camera, stem.with_name(stem.name + ".png"))]
    if what == "depth":
        return [export_depth(frames, s, camera, stem.with_name(stem.name + "_depth.npy"))]
    if what == "mesh":
        return [export_mesh(frames, s, camera, stem.with_name(stem.name + ".ply"))[0]]
    if what == "video":
        return export_video(frames, s, stem.with_name(stem.name + "_orbit"))
    raise ValueError(f"unknown export {what!r} (one of {EXPORTS})")
