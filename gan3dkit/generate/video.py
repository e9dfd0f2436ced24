"""Orbit videos (EG3D gen_videos path): GIF always, MP4 when imageio-ffmpeg is installed."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image

from ..cameras.camera import Cameras
from ..cameras.samplers import lookat_cam2world
from ..utils.visual import depth_to_rgb, to_uint8_hwc
from .views import view_cameras

if TYPE_CHECKING:
    from ..networks.generator import TriPlaneGenerator


def orbit_cameras(G: TriPlaneGenerator, frames: int, device: torch.device | str) -> Cameras:
    """F cameras: yaw = pi/2 + 0.35 sin(2 pi t), pitch = pi/2 - 0.05 + 0.25 cos(2 pi t), t = f / F (EG3D)."""
    r = G.config.rendering
    t = torch.arange(frames, dtype=torch.float64) / frames
    h = math.pi / 2 + 0.35 * torch.sin(2 * math.pi * t)
    v = math.pi / 2 - 0.05 + 0.25 * torch.cos(2 * math.pi * t)
    c2w = lookat_cam2world(h, v, r.avg_camera_radius, r.avg_camera_pivot).float()
    return Cameras.from_matrices(c2w, r.focal).to(device)


@torch.no_grad()
def render_video(
    G: TriPlaneGenerator,
    seed: int,
    out: str | Path,
    frames: int = 60,
    fps: int = 30,
    psi: float = 1.0,
    nrr: int | None = None,
    batch: int = 8,
) -> list[Path]:
    """Render one seed along the orbit (RGB | depth side by side); write <out>.gif and, if possible, <out>.mp4."""
    device = next(G.parameters()).device
    cams = orbit_cameras(G, frames, device)
    cond = view_cameras(G, [0.0], 0.0, device).to_label()  # entangle='camera': the conditioning camera stays frontal
    z = torch.from_numpy(np.random.RandomState(seed).randn(1, G.z_dim)).float().to(device)
    ws = G.mapping(z, cond, truncation_psi=psi)
    rgbs, depths = [], []
    for chunk in cams.split(batch):
        o = G.synthesis(ws.expand(len(chunk), -1, -1), chunk, neural_rendering_resolution=nrr)
        rgbs.append(to_uint8_hwc(o["image"]))
        depths.append(torch.nn.functional.interpolate(o["image_depth"], size=o["image"].shape[-1])[:, 0].cpu().numpy())
    rgb, depth = np.concatenate(rgbs), np.concatenate(depths)
    lo, hi = float(depth.min()), float(depth.max())
    frames_u8 = [np.concatenate([r, depth_to_rgb(d, lo=lo, hi=hi)], axis=1) for r, d in zip(rgb, depth, strict=False)]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    written = []
    gif = out.with_suffix(".gif")
    imgs = [Image.fromarray(f) for f in frames_u8]
    imgs[0].save(gif, save_all=True, append_images=imgs[1:], duration=int(1000 / fps), loop=0)
    written.append(gif)
    if importlib.util.find_spec("imageio_ffmpeg") is not None and importlib.util.find_spec("imageio") is not None:
        import imageio.v2 as imageio

        mp4 = out.with_suffix(".mp4")
        imageio.mimwrite(mp4, list(frames_u8), fps=fps, codec="libx264", quality=8)
        written.append(mp4)
    return written
