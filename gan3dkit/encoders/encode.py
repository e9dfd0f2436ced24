"""Encode photos and videos with a distilled encoder: tri-planes, input-view reconstruction, novel views, depth, mesh,
orbit video; videos frame by frame with optional temporal smoothing of pose and tri-plane; optional refinement."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..cameras.camera import Cameras, as_cameras
from ..generate.mesh import planes_density_grid, surface_mesh, write_ply
from ..generate.video import orbit_cameras
from ..generate.views import view_cameras
from ..utils.config import apply_overrides
from ..utils.files import atomic_save_png, atomic_write_json, atomic_write_safetensors, remove_stale_temps_in
from ..utils.items import Item, run_items
from ..utils.visual import depth_to_rgb, make_grid, to_uint8_hwc
from .base import EncoderOutput
from .media import write_video
from .models import Student


@dataclass
class EncodeOptions:
    yaws: tuple[float, ...] = (0.5, 0.25, 0.0, -0.25, -0.5)
    pitch: float = 0.0
    outputs: tuple[str, ...] = ("triplane", "reconstruction", "views", "depth", "mesh", "video")
    mesh_resolution: int = 64
    video_frames: int = 24
    smoothing: float = 0.0
    """Temporal smoothing of a video: EMA weight of the previous state (0 = off; 0.5 = half the new frame)."""
    refine_steps: int = 0
    refine_set: tuple[str, ...] = ()
    """`--refine-set KEY=VALUE` overrides of the refinement's inversion config (e.g. perceptual=none)."""


def to_tensor(image: np.ndarray, size: int, device: torch.device) -> Tensor:  # uint8 [H, W, 3] -> [1, 3, S, S]
    x = torch.from_numpy(np.array(image, copy=True)).to(device)  # a writable copy (frames may be read-only views)
    x = x.permute(2, 0, 1)[None].float() / 127.5 - 1
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return x


class TemporalSmoother:
    """EMA over frames: state <- a * state + (1 - a) * new, for the tri-planes and the (yaw, pitch, roll) pose.

    LP3D names flicker as a limitation of frame-by-frame encoding; ``a = 0`` reproduces it, larger ``a`` trades
    latency (a lag of about a / (1 - a) frames) for stability. Angles are smoothed as numbers (no wrap-around
    needed within +-pi/2).
    """

    planes: Tensor | None
    pose: Tensor | None

    def __init__(self, alpha: float) -> None:
        if not 0.0 <= alpha < 1.0:
            raise ValueError(f"temporal smoothing must be in [0, 1), got {alpha}")
        self.alpha, self.planes, self.pose = alpha, None, None

    def __call__(self, out: EncoderOutput) -> EncoderOutput:
        a = self.alpha
        if self.planes is None or a == 0:
            self.planes, self.pose = out.planes, out.pose
        else:
            self.planes = a * self.planes + (1 - a) * out.planes
            if out.pose is not None and self.pose is not None:
                self.pose = a * self.pose + (1 - a) * out.pose
        return EncoderOutput(self.planes, out.ws, self.pose, out.base)


@torch.no_grad()
def encode_one(student: Student, image: Tensor, camera: Cameras | Tensor | None = None
               ) -> tuple[EncoderOutput, Cameras, float]:
    """(encoder output, input camera, seconds of the encoder pass). The camera is the given one (e.g. a label from
    --align), else the pose head's prediction, else the generator's frontal camera (the CLI reports which)."""
    camera = None if camera is None else as_cameras(camera)
    if camera is None and not getattr(getattr(student.encoder, "cfg", None), "pose_head", True):
        camera = student.teacher.frontal_cameras(image.shape[0], image.device)  # e.g. converted TriPlaneNet
    t0 = time.perf_counter()
    out = student.encode(image, camera)
    secs = time.perf_counter() - t0
    return out, input_camera(student, out, camera), secs


def input_camera(student: Student, out: EncoderOutput, camera: Cameras | None) -> Cameras:
    if camera is not None:
        return camera
    if out.pose is not None:
        return student.teacher.cam.cameras(out.pose)
    return student.teacher.frontal_cameras(out.planes.shape[0], out.planes.device)


def mesh_from_planes(student: Student, out: EncoderOutput, resolution: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Marching cubes of the encoded tri-plane's sigma (``generate.mesh``: level 10 as EG3D, or the 99th percentile
    when the field never reaches 10, as short runs)."""
    src = student.renderer if student.renderer is not None else student.teacher.G
    grid = planes_density_grid(src.renderer, src.decoder, out.planes, resolution, chunk=1 << 16)
    return surface_mesh(grid, student.teacher.G.config.rendering.box_warp, level=None)


@torch.no_grad()
def write_item(student: Student, out: EncoderOutput, cam: Cameras, image: np.ndarray, dest: Path, stem: str,
               opts: EncodeOptions) -> dict[str, Any]:  # fmt: skip
    """Write the requested outputs of one encoded image; returns {output: path}."""
    t = student.teacher
    written: dict[str, Any] = {}
    (dest / stem).parent.mkdir(parents=True, exist_ok=True)  # a key may be a relative path (sub/x.png)
    nrr = t.nrr
    size = t.G.img_resolution
    inp = to_uint8_hwc(to_tensor(image, size, out.planes.device))[0]
    if "triplane" in opts.outputs:
        path = dest / f"{stem}_triplane.safetensors"
        tensors = {"planes": out.planes[:1].cpu().contiguous(), "camera": cam[:1].to_label().cpu().contiguous()}
        if out.pose is not None:
            tensors["pose"] = out.pose[:1].cpu().contiguous()
        if out.ws is not None:
            tensors["ws"] = out.ws[:1].cpu().contiguous()
        atomic_write_safetensors(path, tensors, {"layout": "planes [1, 3, C, R, R]; camera [1, 25] EG3D label; "
                                                 "pose [1, 3] yaw, pitch, roll (rad)"})  # fmt: skip
        written["triplane"] = str(path)
    rec = student.render(out, cam[:1], nrr)
    if "reconstruction" in opts.outputs:
        pair = np.concatenate([inp, to_uint8_hwc(rec["image"])[0]], axis=1)
        written["reconstruction"] = str(atomic_save_png(dest / f"{stem}_reconstruction.png", pair))
    if "views" in opts.outputs or "depth" in opts.outputs:
        cams = view_cameras(t.G, list(opts.yaws), opts.pitch, out.planes.device)
        rep = EncoderOutput(out.planes[:1].expand(len(cams), -1, -1, -1, -1),
                            None if out.ws is None else out.ws[:1].expand(len(cams), -1, -1))  # fmt: skip
        views = student.render(rep, cams, nrr)
        depth = F.interpolate(views["image_depth"], size=size, mode="nearest")[:, 0].cpu().numpy()
        lo, hi = float(depth.min()), float(depth.max())
        if "views" in opts.outputs:
            grid = make_grid(list(to_uint8_hwc(views["image"])), len(cams))
            written["views"] = str(atomic_save_png(dest / f"{stem}_views.png", grid))
        if "depth" in opts.outputs:
            dep = [depth_to_rgb(d, lo=lo, hi=hi) for d in depth]
            written["depth"] = str(atomic_save_png(dest / f"{stem}_depth.png", make_grid(dep, len(cams))))
            np.save(dest / f"{stem}_depth_input.npy", rec["image_depth"][0, 0].cpu().numpy())
    if "mesh" in opts.outputs:
        try:
            verts, faces, level = mesh_from_planes(student, out, opts.mesh_resolution)
            written["mesh"] = str(write_ply(dest / f"{stem}.ply", verts, faces))
            written["mesh_level"] = level
        except (ValueError, RuntimeError) as exc:
            written["mesh"] = f"skipped: {exc}"
    if "video" in opts.outputs:
        cams = orbit_cameras(t.G, opts.video_frames, out.planes.device)
        frames = []
        for chunk in cams.split(8):
            rep = EncoderOutput(out.planes[:1].expand(len(chunk), -1, -1, -1, -1),
                                None if out.ws is None else out.ws[:1].expand(len(chunk), -1, -1))  # fmt: skip
            frames += list(to_uint8_hwc(student.render(rep, chunk, nrr)["image"]))
        written["video"] = [str(p) for p in write_video([np.concatenate([inp, f], 1) for f in frames],
                                                        dest / f"{stem}_orbit", 12)]  # fmt: skip
    return written


class _GivenW:
    """Stands in for a latent encoder in ``gan3dkit.invert``: the projector starts from this w."""

    def __init__(self, w: Tensor) -> None:
        self.w = w.detach()

    def predict_w(self, image: Tensor) -> Tensor:  # -> [1, 1, w_dim]
        return self.w


def refine(student: Student, image: np.ndarray, cam: Cameras | Tensor, steps: int, name: str,
           out: EncoderOutput | None = None, sets: tuple[str, ...] = ()
           ) -> tuple[EncoderOutput, Cameras, dict]:  # fmt: skip
    """``--refine N``: N steps of pose-optimising inversion (gan3dkit.invert, Ko et al. Alg. 3: joint w + pose
    descent, no generator tuning) starting from the encoder's camera and, when the encoder gives a W+ latent
    (TriPlaneNet's ``out.ws``), from the mean of its W+ vectors (else from w_avg: LP3D has no latent); returns its
    planes, camera and report.

    The inversion optimises a latent of the generator, so the refined result is G(w) at the refined pose (for
    TriPlaneNet the encoder's offsets are not kept). Raises RuntimeError when gan3dkit.invert is unavailable.
    """
    try:
        from .. import invert as inv
    except ImportError as exc:
        raise RuntimeError(
            f"--refine needs the inversion package gan3dkit.invert, which is not importable ({exc})"
        ) from exc
    cfg = inv.preset("ko", 3)
    cfg.projector.steps = steps
    cfg.tune.steps = 0
    cfg.pose.warmup_steps = min(cfg.pose.warmup_steps, max(0, steps // 4))
    cfg.projector.w_avg_samples = min(cfg.projector.w_avg_samples, 256)
    cfg = apply_overrides(cfg, list(sets))
    G = student.teacher.G
    size = G.img_resolution
    cam = as_cameras(cam)
    img = to_uint8_hwc(to_tensor(image, size, cam.device))[0]
    label = cam[:1].to_label()[0].detach().cpu().numpy().astype(np.float32)  # an inversion item holds its label
    item = inv.InvertItem(name, img, label, "encoder")
    ws0 = out.ws if out is not None else None
    start = ws0 is not None
    extras = inv.Extras(latent_encoder=_GivenW(ws0[:1].mean(1, keepdim=True))) if ws0 is not None else None
    t0 = time.perf_counter()
    with torch.enable_grad():
        res = inv.invert(G, item, cfg, extras)
    with torch.no_grad():
        planes = res.generator.synthesize_planes(res.ws)
    report = {"steps": steps, "seconds": time.perf_counter() - t0, "method": "ko alg. 3 (no tuning)",
              "w_start": "encoder (mean of its W+)" if start else "w_avg",
              "pose_change": res.report.get("pose_change")}  # fmt: skip
    return EncoderOutput(planes, res.ws), res.camera, report


def encode_items(student: Student, items: list[Item], load: Callable[[Item], tuple[np.ndarray, Tensor | None]],
                 dest: Path, opts: EncodeOptions, video: bool = False, fps: float = 12.0, catch: bool = True,
                 on_item: Callable[[int, int], None] | None = None) -> dict[str, Any]:  # fmt: skip
    """Encode every item (`load(item)` -> uint8 image, camera or None) through the one item loop: a bad item is
    reported in `failed` and the others go on. A video is encoded in order with the smoother and written as
    ``video_side_by_side`` (input | reconstruction | fixed novel view)."""
    dev = next(student.encoder.parameters()).device
    size: int = cast(Any, student.encoder).cfg.input_resolution
    smoother = TemporalSmoother(opts.smoothing if video else 0.0)
    seconds: list[float] = []
    side: list[np.ndarray] = []
    per_frame_outputs = opts if not video else EncodeOptions(**{**opts.__dict__, "outputs": ("triplane",)})
    novel = view_cameras(student.teacher.G, [0.4], 0.0, dev)
    remove_stale_temps_in(dest, recursive=True)  # outputs of a killed run

    def process(item: Item, loaded: tuple[np.ndarray, Tensor | None]) -> dict[str, Any]:
        image, cam = loaded
        out, c, secs = encode_one(student, to_tensor(image, size, dev), cam)
        seconds.append(secs)
        out = smoother(out)
        if video and out.pose is not None and cam is None:
            c = student.teacher.cam.cameras(out.pose)
        entry: dict[str, Any] = {"name": item.key, "pose": None if out.pose is None else out.pose[0].tolist()}
        if opts.refine_steps > 0:
            out, c, entry["refine"] = refine(student, image, c, opts.refine_steps, item.key, out, opts.refine_set)
        entry.update(write_item(student, out, c, image, dest, item.key, per_frame_outputs))
        if video:
            with torch.no_grad():
                rec = to_uint8_hwc(student.render(out, c, student.teacher.nrr)["image"])[0]
                rep = EncoderOutput(out.planes, out.ws)
                nov = to_uint8_hwc(student.render(rep, novel, student.teacher.nrr)["image"])[0]
            inp = to_uint8_hwc(to_tensor(image, rec.shape[0], dev))[0]
            side.append(np.concatenate([inp, rec, nov], axis=1))
        return entry

    report = run_items(items, load, process, catch=catch,
                       on_item=None if on_item is None else lambda d, n, _: on_item(d, n))  # fmt: skip
    report["encoder_seconds"] = seconds
    if video and side:
        report["video_side_by_side"] = [str(p) for p in write_video(side, dest / "video_side_by_side", fps)]
        report["smoothing"] = opts.smoothing
    report["encoder_ms_mean"] = 1000 * float(np.mean(seconds[1:] if len(seconds) > 1 else seconds)) if seconds else None
    if report["items"]:
        atomic_write_json(dest / "encode_report.json", report)
    return report


def encode_source(student: Student, source: Path, kind: str, out: Path, opts: EncodeOptions,
                  align: Callable[[np.ndarray, str], tuple[np.ndarray, Tensor]] | None = None,
                  max_frames: int | None = None, on_item: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Encode an image, a folder (every image below it, keyed by its relative name, nothing under `out`) or a video
    (`kind` from `media.input_kind`) into `out`; `align(image, name)` -> (crop, camera) crops faces first. Each item
    notes an upscale, a stretch or an animation's first frame; a single image's error propagates, a folder's or a
    video's bad items are reported. `out` is not left behind when nothing was written."""
    from ..data.images import load_still_image, resize_notes
    from ..utils.files import output_folder
    from ..utils.items import folder_items
    from .media import IMAGE_EXTS, read_video

    dev = next(student.encoder.parameters()).device
    size: int = cast(Any, student.encoder).cfg.input_resolution
    fps = 12.0
    frames: list[np.ndarray] = []
    if kind == "video":
        frames, fps = read_video(source, max_frames)
        items = [Item(f"frame{i:05d}", None, i) for i in range(len(frames))]
    elif kind == "folder":
        items = folder_items(source, IMAGE_EXTS, exclude=out)
    else:
        items = [Item(source.name, source)]

    def load(item: Item) -> tuple[np.ndarray, Tensor | None]:
        if item.path is None:
            assert item.index is not None  # a video frame's item carries its index
            image = frames[item.index]
        else:
            image, item.notes = load_still_image(item.path)
        cam = None
        if align is not None:
            image, cam = align(image, item.key)
            cam = cam.to(dev)
        item.notes += resize_notes(*cast("tuple[int, int]", image.shape[:2]), size)
        return image, cam

    with output_folder(out):
        return encode_items(student, items, load, out, opts, video=kind == "video", fps=fps, catch=kind != "image",
                            on_item=on_item)  # fmt: skip
