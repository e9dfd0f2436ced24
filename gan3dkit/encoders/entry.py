"""`encode` as one call: typed options -> checked request, loaded encoder, every item encoded, the report."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..utils.progress import Bars, no_bars

OUTPUTS = ("triplane", "reconstruction", "views", "depth", "mesh", "video")


@dataclass
class EncodeRequest:
    """What `gan3dkit encode` was asked (one field per option; see its --help)."""

    source: Path
    ckpt: Path
    out: Path = Path("encoded")
    align: bool = False
    outputs: str = ",".join(OUTPUTS)
    yaws: str = "0.5,0.25,0,-0.25,-0.5"
    smooth: float = 0.0
    max_frames: int | None = None
    refine: int = 0
    refine_set: tuple[str, ...] = ()
    mesh_res: int = 64
    frames: int = 24
    device: str = "cpu"


def face_align(image: np.ndarray, resolution: int, name: str) -> tuple[np.ndarray, torch.Tensor]:
    """EG3D-style face crop + head-pose camera (the `prepare single` pipeline); DataError when no face is found."""
    from ..prepare.faces.align import CropSpec
    from ..prepare.faces.backends import load_backend, resolve_backend
    from ..prepare.faces.pipeline import FaceJob, align_face
    from ..prepare.faces.pose import mean_shape

    try:
        backend = resolve_backend("auto")[0]
        job = FaceJob(backend=backend, crop=CropSpec(output_size=resolution))
        face = align_face(image, job, load_backend(backend), mean_shape(job.pose_shape))
    except Exception as exc:  # noqa: BLE001 - no face, backend missing: one clear line
        from ..utils.errors import DataError

        raise DataError(f"{name}: --align failed ({type(exc).__name__}: {exc})") from None
    return face.image, torch.from_numpy(np.asarray(face.camera, dtype=np.float32))[None]


def _check(req: EncodeRequest) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """Usage errors before anything loads; returns the chosen outputs and the view yaws."""
    from ..utils.config import ConfigError, apply_overrides
    from ..utils.errors import UsageError, check_number

    chosen = tuple(o.strip() for o in req.outputs.split(",") if o.strip())
    bad = [o for o in chosen if o not in OUTPUTS]
    if bad or not chosen:
        raise UsageError(f"--outputs: unknown {bad}; choose from {', '.join(OUTPUTS)}")
    try:
        yaw_list = tuple(float(y) for y in req.yaws.split(",") if y.strip())
    except ValueError:
        raise UsageError(f"--yaws must be comma-separated radians, got {req.yaws!r}") from None
    for y in yaw_list:
        check_number("--yaws", y)
    if not yaw_list:
        raise UsageError("--yaws needs at least one yaw (radians)")
    check_number("--smooth", req.smooth, ge=0.0, lt=1.0)
    check_number("--refine", req.refine, ge=0, integer=True)
    check_number("--mesh-res", req.mesh_res, ge=16, le=1024, integer=True)
    check_number("--frames", req.frames, ge=2, integer=True)
    check_number("--max-frames", req.max_frames, ge=1, integer=True, allow_none=True)
    if req.refine > 0:
        try:
            import gan3dkit.invert as inv
        except ImportError as exc:
            raise UsageError(
                f"--refine needs the inversion package gan3dkit.invert, not importable here: {exc}"
            ) from exc
        try:
            apply_overrides(inv.preset("ko", 3), list(req.refine_set))
        except ConfigError as exc:
            raise UsageError(f"--refine-set: {exc}") from None
    elif req.refine_set:
        raise UsageError("--refine-set needs --refine N")
    return chosen, yaw_list


def run_encode(req: EncodeRequest, progress: Bars = no_bars) -> tuple[dict[str, Any], str]:
    """Check the request, load the encoder, encode the image / folder / video into `req.out`. Returns the report
    (with source, kind, camera, video_backend, encoder) and the device it ran on."""
    from ..utils.device import resolve_device
    from ..utils.items import check_out_folder
    from .encode import EncodeOptions, encode_source
    from .media import input_kind, video_backend
    from .models import load_encoder

    chosen, yaw_list = _check(req)
    source, out, align = req.source, req.out, req.align
    device = resolve_device(req.device)
    kind = input_kind(source)
    check_out_folder(out, source)
    student, _, header = load_encoder(req.ckpt, device)
    nets: Any = student  # (nn.Module attributes: typed Tensor | Module)
    opts = EncodeOptions(yaws=yaw_list, outputs=chosen, mesh_resolution=req.mesh_res, video_frames=req.frames,
                         smoothing=req.smooth, refine_steps=req.refine, refine_set=req.refine_set)  # fmt: skip
    res = nets.teacher.G.img_resolution
    with progress(f"encode {kind}", None) as update:
        report = encode_source(student, source, kind, out, opts, max_frames=req.max_frames, on_item=update,
                               align=(lambda image, name: face_align(image, res, name)) if align else None)  # fmt: skip
    report.update({"source": str(source), "kind": kind, "camera": "landmarks (--align)" if align else
                   "encoder pose head" if nets.encoder.cfg.pose_head else "frontal",
                   "video_backend": video_backend(), "encoder": header["extra"].get("arch", "?")})  # fmt: skip
    return report, device
