"""Pictures of edits: multi-view grids (original + each edit, with depth), component sheets (−σ, 0, +σ), orbit GIFs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image, ImageDraw

from ..generate.video import orbit_cameras
from ..generate.views import view_cameras
from ..utils.files import atomic_output
from ..utils.visual import depth_to_rgb, make_grid, to_uint8_hwc
from .edits import Edit, apply_edit, triplane_offset_edit
from .ganspace import GanSpace

if TYPE_CHECKING:
    from ..cameras.camera import Cameras
    from ..networks.generator import TriPlaneGenerator

PAD = 2


@torch.no_grad()
def render(G: TriPlaneGenerator, ws: torch.Tensor, cams: Cameras, nrr: int | None = None,
           planes: torch.Tensor | None = None) -> dict[str, torch.Tensor]:  # fmt: skip
    """One latent ``ws [1, L, D]`` (or its planes) from every one of the V cameras; fixed noise and samples, so two
    renders differ only by the latent."""
    v = len(cams)
    wsv = ws.expand(v, -1, -1)
    if planes is not None:
        return G.render_planes(planes.expand(v, -1, -1, -1, -1), cams, wsv, neural_rendering_resolution=nrr,
                               deterministic_render=True)
    return G.synthesis(wsv, cams, neural_rendering_resolution=nrr, noise_mode="const", deterministic_render=True)


def label_rows(grid: np.ndarray, labels: list[str], row_h: int, width: int = 110, title: str = "") -> np.ndarray:
    """Add a white left margin with one text label per row, and an optional title line (PIL's default font)."""
    top = 14 if title else 0
    img = Image.new("RGB", (grid.shape[1] + width, grid.shape[0] + top), "white")
    img.paste(Image.fromarray(grid), (width, top))
    draw = ImageDraw.Draw(img)
    if title:
        draw.text((4, 1), title, fill=(0, 0, 0))
    for i, text in enumerate(labels):
        draw.text((4, top + PAD + i * (row_h + PAD) + row_h // 2 - 6), text, fill=(0, 0, 0))
    return np.asarray(img)


@torch.no_grad()
def edit_grid(G: TriPlaneGenerator, ws: torch.Tensor, gs: GanSpace, edits: list[Edit], yaws: tuple[float, ...],
              pitch: float, nrr: int | None = None, delta_planes: torch.Tensor | None = None
              ) -> tuple[np.ndarray, dict[str, torch.Tensor]]:  # fmt: skip
    """Rows: the original then each edit; columns: the views, then their depth maps. With ``delta_planes`` the
    original is ``G(w) + ΔT`` and each edit is the tri-plane-offset edit. Returns the labelled grid and the RGB
    renders ``{label: [V, 3, H, W]}``."""
    device = ws.device
    cams = view_cameras(G, list(yaws), pitch, device)
    rows: list[np.ndarray] = []
    renders: dict[str, torch.Tensor] = {}
    base_planes = None
    if delta_planes is not None:
        base_planes = triplane_offset_edit(G, ws, ws, delta_planes)
    variants = [("original" if delta_planes is None else "original+dT", ws, base_planes)]
    for e in edits:
        ws_e = apply_edit(ws, gs, e)
        planes = triplane_offset_edit(G, ws, ws_e, delta_planes) if delta_planes is not None else None
        variants.append((e.label(), ws_e, planes))
    depths = []
    for _label, w, planes in variants:
        depths.append(render(G, w, cams, nrr, planes))
    all_d = torch.cat([o["image_depth"] for o in depths])
    lo, hi = float(all_d.min()), float(all_d.max())
    for (label, _w, _p), out in zip(variants, depths, strict=False):
        rgb = to_uint8_hwc(out["image"])
        size = rgb.shape[1]
        dep = torch.nn.functional.interpolate(out["image_depth"], size=size, mode="nearest")[:, 0].cpu().numpy()
        rows += list(rgb) + [depth_to_rgb(d, lo=lo, hi=hi) for d in dep]
        renders[label] = out["image"]
    grid = make_grid(rows, 2 * len(yaws), pad=PAD)
    title = "views at yaw " + ", ".join(f"{y:+g}" for y in yaws) + f" rad, pitch {pitch:+g}; then their depth"
    return label_rows(grid, [v[0] for v in variants], rows[0].shape[0], title=title), renders


@torch.no_grad()
def component_sheet(G: TriPlaneGenerator, ws_list: list[torch.Tensor], gs: GanSpace, top: int, sigma: float = 1.0,
                    nrr: int | None = None,
                    progress: Callable[[int, int], None] | None = None) -> np.ndarray:  # fmt: skip
    """Rows: the top components; per latent three frontal columns at −sigma σ, 0, +sigma σ (additive, all layers)."""
    top = min(top, gs.num_components)
    cam = view_cameras(G, [0.0], 0.0, ws_list[0].device)
    tiles: list[np.ndarray] = []
    labels = []
    for k in range(top):
        for ws in ws_list:
            for s in (-sigma, 0.0, sigma):
                w = apply_edit(ws, gs, Edit(k, s)) if s else ws
                tiles.append(to_uint8_hwc(render(G, w, cam, nrr)["image"])[0])
        labels.append(f"pc{k} {100 * float(gs.var_ratio[k]):.1f}%")
        if progress is not None:
            progress(k + 1, top)
    grid = make_grid(tiles, 3 * len(ws_list), pad=PAD)
    title = f"component (variance share) | per latent: -{sigma:g} sd, 0, +{sigma:g} sd (additive, all layers)"
    return label_rows(grid, labels, tiles[0].shape[0], title=title)


@torch.no_grad()
def edit_orbit(G: TriPlaneGenerator, ws: torch.Tensor, ws_edit: torch.Tensor, out: str | Path, frames: int = 24,
               fps: int = 12, nrr: int | None = None, planes: tuple[torch.Tensor, torch.Tensor] | None = None
               ) -> Path:  # fmt: skip
    """GIF along EG3D's orbit: original | edited side by side (same cameras, same noise)."""
    cams = orbit_cameras(G, frames, ws.device)
    frames_u8 = []
    for i in range(frames):
        a = render(G, ws, cams[i : i + 1], nrr, None if planes is None else planes[0])["image"]
        b = render(G, ws_edit, cams[i : i + 1], nrr, None if planes is None else planes[1])["image"]
        frames_u8.append(np.concatenate([to_uint8_hwc(a)[0], to_uint8_hwc(b)[0]], axis=1))
    out = Path(out).with_suffix(".gif")
    out.parent.mkdir(parents=True, exist_ok=True)
    imgs = [Image.fromarray(f) for f in frames_u8]
    with atomic_output(out) as tmp:
        imgs[0].save(tmp, format="GIF", save_all=True, append_images=imgs[1:], duration=int(1000 / fps), loop=0)
    return out
