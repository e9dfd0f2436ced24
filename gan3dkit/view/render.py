"""Frames for the viewer: seed/psi/edits -> cached tri-planes -> the project's plane renderer at a browser camera."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..cameras.camera import Cameras, as_cameras
from ..generate.views import seed_latent, view_cameras
from ..networks.planes import render_planes
from ..render import ImportanceRenderer, ray_bundle
from ..utils.visual import depth_to_rgb, to_uint8_hwc
from .sources import PlaneRenderer, ViewSource, generator_renderer

if TYPE_CHECKING:
    from ..networks.generator import TriPlaneGenerator

VIEW_MODES = ("rgb", "raw", "depth", "normals")
CONDITIONING = ("frontal", "render")
PANELS = ("tuned", "projected", "both")


@dataclass(frozen=True)
class ViewSettings:
    """Everything but the camera that decides a frame (hashable: it keys the tri-plane cache)."""

    seed: int = 0
    psi: float = 1.0
    conditioning: str = "frontal"
    """The mapping's camera: frontal (EG3D's gen_samples) or the render camera (EG3D's visualizer `entangle`)."""
    mode: str = "rgb"
    samples: int = 0
    """Coarse samples per ray (the fine ones scale alike); 0 = the model's."""
    edits: tuple[tuple[int, float, int, int], ...] = ()
    """GANSpace edits (component, strength in sigma, first layer, end layer exclusive)."""
    panel: str = "tuned"
    """Inversions: the tuned generator, the one before tuning, or both side by side."""


@dataclass
class Frame:
    image: np.ndarray  # uint8 [H, W, 3] to show
    depth: np.ndarray  # float32 [r, r] ray distance of the (first) panel
    nrr: int
    seconds: float


def normals_from_depth(camera: Cameras | torch.Tensor, depth: torch.Tensor) -> np.ndarray:  # 1 camera, [r, r]
    """Surface normals of the depth map (cross product of neighbouring 3D points), in camera axes shown as the usual
    normal-map colours (x right = red, y up = green, toward the viewer = blue); uint8 [r, r, 3]."""
    r = depth.shape[-1]
    cams = as_cameras(camera.float() if isinstance(camera, torch.Tensor) else camera).to(dtype=torch.float32)
    origins, dirs = ray_bundle(cams, r)
    pts = (origins + dirs * depth.reshape(1, -1, 1)).reshape(r, r, 3)
    dy, dx = torch.gradient(pts, dim=(0, 1))  # central differences, one-sided at the border
    n = torch.linalg.cross(dx, dy)
    n = n / n.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    n_cam = n @ cams.rotations[0]  # world -> camera (OpenCV axes)
    n_cam = torch.where(n_cam[..., 2:] > 0, -n_cam, n_cam)  # face the camera
    rgb = torch.stack([n_cam[..., 0], -n_cam[..., 1], -n_cam[..., 2]], -1)
    return ((rgb + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()


class FrameRenderer:
    """Renders frames for every tab, one at a time (a lock: the model and the CPU are shared), caching the planes of
    the last few settings so an orbit only re-runs the volume renderer and the super-resolution."""

    def __init__(self, source: ViewSource, ganspace=None, cache_size: int = 8) -> None:
        self.source = source
        self.ganspace = ganspace
        self.lock = threading.Lock()
        self.cache_size = cache_size
        self._planes: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}
        self.version = 0  # bumped when a followed run's newest checkpoint is swapped in

    @property
    def device(self) -> torch.device:
        return next(self.source.render.decoder.parameters()).device

    def swap(self, source: ViewSource) -> None:
        """Show another checkpoint of the same run (the newest EMA generator)."""
        with self.lock:
            self.source = source
            self._planes.clear()
            self.version += 1

    def generators(self, panel: str) -> list[TriPlaneGenerator | None]:
        src = self.source
        if src.planes is not None:
            return [None]  # a tri-plane file: fixed planes, its own renderer
        if src.tuned is None or panel == "projected":
            return [src.G]
        return [src.tuned] if panel == "tuned" else [src.tuned, src.G]

    def latent(self, G: TriPlaneGenerator, s: ViewSettings, label: torch.Tensor) -> torch.Tensor:  # -> ws [1, L, D]
        src = self.source
        if src.ws is not None:
            ws = src.ws
        else:
            cond = label if s.conditioning == "render" else view_cameras(G, [0.0], 0.0, self.device).to_label()
            ws = G.mapping(seed_latent(G, s.seed).to(self.device), cond.to(self.device), truncation_psi=s.psi)
        if s.edits and self.ganspace is not None:
            from ..edit.edits import Edit, apply_edit

            for comp, strength, start, end in s.edits:
                ws = apply_edit(ws, self.ganspace, Edit(comp, strength, start, end))
        return ws

    def planes(self, G: TriPlaneGenerator | None, s: ViewSettings, label: torch.Tensor):
        """(planes [1, 3, C, R, R], ws) for the settings; cached unless the mapping sees the render camera."""
        if G is None:  # a tri-plane file: fixed planes
            return self.source.planes, self.source.ws
        key = (id(G), s.seed, s.psi, s.edits, s.conditioning == "render" and tuple(label.flatten().tolist()))
        hit = self._planes.pop(key, None)
        if hit is None:
            ws = self.latent(G, s, label)
            hit = (G.synthesize_planes(ws, noise_mode="const"), ws)
        self._planes[key] = hit  # most recent last
        while len(self._planes) > self.cache_size:
            self._planes.pop(next(iter(self._planes)))
        return hit

    def bounds_for(self, renderer: ImportanceRenderer, cams: Cameras) -> tuple[float, float] | None:
        """The volume renderer's near/far bounds moved by how much farther from the pivot this camera is than the
        model's average camera: EG3D's bounds are distances from the camera, so a dollied camera would see nothing.
        At the average distance (all of `generate`'s cameras) None: the model's own bounds."""
        r = self.source.rendering
        origin = cams.origins[0]
        pivot = torch.tensor(r.avg_camera_pivot, dtype=origin.dtype, device=origin.device)
        shift = float((origin - pivot).norm()) - r.avg_camera_radius
        if abs(shift) < 1e-3:
            return None
        cfg = renderer.config
        near = max(1e-3, cfg.ray_start + shift)
        return near, max(near + 1e-3, cfg.ray_end + shift)

    def samples(self, s: ViewSettings) -> tuple[int | None, int | None]:
        r = self.source.rendering
        if s.samples <= 0:
            return None, None
        fine = round(r.depth_resolution_importance * s.samples / r.depth_resolution)
        return max(s.samples, 4 if fine > 0 else 2), fine

    def camera_forms(self, camera: Cameras | torch.Tensor) -> tuple[Cameras, torch.Tensor]:
        """(Cameras, label) on this device: the browser's camera decoded once, and the label only for the mapping's
        conditioning input and the plane cache's key (a given label is kept as it is)."""
        cams = as_cameras(camera).to(self.device)
        return cams, camera.to(self.device) if isinstance(camera, torch.Tensor) else cams.to_label()

    @torch.no_grad()
    def render(self, s: ViewSettings, camera: Cameras | torch.Tensor, nrr: int | None = None) -> Frame:
        """One frame at `camera` (one Cameras, or the browser's [1, 25] label, decoded here once; deterministic
        samples, constant noise: a still camera is still). The label form is only the mapping's conditioning input
        (conditioning "render") and the plane cache's key."""
        t0 = time.perf_counter()
        nrr = nrr or self.source.nrr
        cams, label = self.camera_forms(camera)
        coarse, fine = self.samples(s)
        with self.lock:
            panels, depth0 = [], None
            for G in self.generators(s.panel):
                planes, ws = self.planes(G, s, label)
                rend = generator_renderer(G) if G is not None else self.source.render
                if ws is None:
                    ws = rend.const_w
                out = render_planes(rend.renderer, rend.decoder, rend.superresolution, planes, cams,
                                    ws.expand(1, -1, -1), nrr, deterministic=True, depth_resolution=coarse,
                                    depth_resolution_importance=fine,
                                    bounds=self.bounds_for(rend.renderer, cams))  # fmt: skip
                depth = out["image_depth"][0, 0]
                depth0 = depth if depth0 is None else depth0
                panels.append(self.picture(s.mode, out, cams, depth))
        image = panels[0] if len(panels) == 1 else np.concatenate(panels, axis=1)
        if depth0 is None:  # generators() always gives at least one panel
            raise RuntimeError("no panel was rendered")
        return Frame(image, depth0.float().cpu().numpy(), nrr, time.perf_counter() - t0)

    def picture(self, mode: str, out: dict, cams: Cameras, depth: torch.Tensor) -> np.ndarray:
        if mode == "raw":
            return to_uint8_hwc(out["image_raw"][0])
        if mode == "depth":
            return depth_to_rgb(depth.cpu().numpy())
        if mode == "normals":
            return normals_from_depth(cams.to("cpu"), depth.cpu())
        return to_uint8_hwc(out["image"][0])

    def planes_for_export(self, s: ViewSettings, camera: Cameras | torch.Tensor
                          ) -> tuple[torch.Tensor, PlaneRenderer]:  # fmt: skip
        """The planes and renderer of the first panel (mesh export)."""
        _, label = self.camera_forms(camera)
        with self.lock:
            G = self.generators(s.panel)[0]
            planes, _ = self.planes(G, s, label)
            return planes, generator_renderer(G) if G is not None else self.source.render

