"""Inversion outputs: reconstruction beside the input, novel views + depth, orbit GIF, mesh, reconstruction metrics."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..cameras.camera import Cameras
from ..generate.mesh import density_grid, surface_mesh, write_ply
from ..generate.video import orbit_cameras
from ..generate.views import view_cameras
from ..metrics.image import ms_ssim, mse, psnr, ssim
from ..utils.files import atomic_output, atomic_save_png, atomic_write_bytes
from ..utils.visual import depth_to_rgb, make_grid, to_uint8_hwc


def to_uint8(img: torch.Tensor) -> np.ndarray:  # [1, 3, H, W] in [-1, 1] -> [H, W, 3]
    """The first image of a batch as uint8 [H, W, 3] (`utils.visual.to_uint8_hwc`)."""
    return to_uint8_hwc(img[0])


def reconstruction_metrics(pred: torch.Tensor, target: torch.Tensor, lpips=None) -> dict:
    """MSE / PSNR / SSIM / MS-SSIM on [0, 1] images (the evaluation suite's range), LPIPS-alex when calibrated."""
    x, y = ((pred.clamp(-1, 1) + 1) / 2).double(), ((target + 1) / 2).double()
    out = {"mse_01": float(mse(x, y)[0]), "psnr": float(psnr(x, y)[0]), "ssim": float(ssim(x, y)[0]),
           "ms_ssim": float(ms_ssim(x, y)[0]), "range": "[0, 1]"}
    if lpips is not None:
        with torch.no_grad():
            out["lpips"] = float(lpips(pred.clamp(-1, 1).float(), target.float())[0])
        out["lpips_network"] = lpips.description
        out["lpips_calibrated"] = bool(lpips.calibrated)
    else:
        out["lpips"] = None
    return out


def metric_lpips():
    """LPIPS-alex for the report when its ImageNet backbone is available (never a random backbone); else None."""
    from ..metrics.perceptual import LPIPS
    from ..metrics.weights import WeightsUnavailable

    try:
        return LPIPS("alex"), ""
    except (WeightsUnavailable, FileNotFoundError, ValueError) as exc:
        return None, f"LPIPS not reported: {str(exc).split('. Options')[0]}"


@torch.no_grad()
def render_at(G, ws: torch.Tensor, cams: Cameras | torch.Tensor, nrr: int | None = None) -> dict[str, torch.Tensor]:
    return G.synthesis(ws.expand(len(cams), -1, -1), cams, noise_mode="const", deterministic_render=True,
                       neural_rendering_resolution=nrr)


@torch.no_grad()
def write_views(G, ws: torch.Tensor, out: Path, yaws=(0.6, 0.3, 0.0, -0.3, -0.6), pitch: float = 0.0,
                nrr: int | None = None) -> Path:
    """Novel views at the given yaws (frontal pitch) and their depth maps, one row each."""
    cams = view_cameras(G, list(yaws), pitch, ws.device)
    o = render_at(G, ws, cams, nrr)
    rgb = [to_uint8(o["image"][i : i + 1]) for i in range(len(yaws))]
    size = rgb[0].shape[0]
    depth = torch.nn.functional.interpolate(o["image_depth"], size=size, mode="nearest")[:, 0].cpu().numpy()
    lo, hi = float(depth.min()), float(depth.max())
    return atomic_save_png(out, make_grid(rgb + [depth_to_rgb(d, lo=lo, hi=hi) for d in depth], len(yaws)))


@torch.no_grad()
def write_orbit(G, ws: torch.Tensor, out: Path, frames: int = 24, fps: int = 12, nrr: int | None = None) -> Path:
    """EG3D's orbit (generate.video.orbit_cameras) of the inverted latent, RGB | depth, as a GIF."""
    cams = orbit_cameras(G, frames, ws.device)
    rgbs, depths = [], []
    for chunk in cams.split(8):
        o = render_at(G, ws, chunk, nrr)
        rgbs += [to_uint8(o["image"][i : i + 1]) for i in range(len(chunk))]
        depths.append(torch.nn.functional.interpolate(o["image_depth"], size=o["image"].shape[-1])[:, 0].cpu().numpy())
    depth = np.concatenate(depths)
    lo, hi = float(depth.min()), float(depth.max())
    imgs = [
        Image.fromarray(np.concatenate([r, depth_to_rgb(d, lo=lo, hi=hi)], axis=1))
        for r, d in zip(rgbs, depth, strict=False)
    ]
    buf = io.BytesIO()
    imgs[0].save(buf, format="GIF", save_all=True, append_images=imgs[1:], duration=int(1000 / fps), loop=0)
    return atomic_write_bytes(out, buf.getvalue())


@torch.no_grad()
def write_mesh(G, ws: torch.Tensor, out: Path, resolution: int = 64, level: float | None = None) -> dict:
    """Marching cubes of sigma (generate.mesh.density_grid); level 10 (EG3D) when reached, else the 99th percentile
    (as `generate --mesh-level auto`). Returns {path, level} or {error}."""
    try:
        verts, faces, level = surface_mesh(density_grid(G, ws, resolution), G.config.rendering.box_warp, level)
    except ValueError as exc:  # no surface at that level
        return {"error": str(exc).split(":")[0]}
    with atomic_output(out) as tmp:
        write_ply(tmp, verts, faces)
    return {"path": str(out), "level": float(level), "vertices": len(verts)}


def write_depth(depth: torch.Tensor, out_png: Path, out_npy: Path) -> None:
    d = depth[0, 0].cpu().numpy().astype(np.float32)
    atomic_save_png(out_png, depth_to_rgb(d))
    buf = io.BytesIO()
    np.save(buf, d)
    atomic_write_bytes(out_npy, buf.getvalue())


def save_npy(path: Path, array: np.ndarray) -> Path:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array))
    return atomic_write_bytes(path, buf.getvalue())
