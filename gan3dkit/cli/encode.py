"""`gan3dkit encode`: photo, folder or video -> tri-planes and renders with a distilled encoder (one pass each)."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import console, emit_json, handle_errors, progress_bar

OUTPUTS = ("triplane", "reconstruction", "views", "depth", "mesh", "video")


def _align(image, resolution: int, name: str):
    """EG3D-style face crop + head-pose camera (the `prepare single` pipeline); ValueError when no face is found."""
    import numpy as np
    import torch

    from ..prepare.faces.align import CropSpec
    from ..prepare.faces.backends import load_backend, resolve_backend
    from ..prepare.faces.pipeline import FaceJob, align_face
    from ..prepare.faces.pose import mean_shape

    try:
        backend = resolve_backend("auto")[0]
        job = FaceJob(backend=backend, crop=CropSpec(output_size=resolution))
        face = align_face(image, job, load_backend(backend), mean_shape(job.pose_shape))
    except Exception as exc:  # noqa: BLE001 - no face, backend missing: one clear line
        raise ValueError(f"{name}: --align failed ({type(exc).__name__}: {exc})") from None
    return face.image, torch.from_numpy(np.asarray(face.camera, dtype=np.float32))[None]


@handle_errors
def encode(
    source: Path = typer.Argument(..., help="An image, a folder of images, or a video (GIF/MP4)."),
    ckpt: Path = typer.Option(..., "--ckpt", help="Encoder checkpoint written by `gan3dkit distill-encoder`."),
    out: Path = typer.Option(Path("encoded"), "--out", help="Output folder."),
    align: bool = typer.Option(False, help="Crop faces EG3D-style and take the camera from landmarks (face stack)."),
    outputs: str = typer.Option(",".join(OUTPUTS), help=f"Comma-separated subset of {', '.join(OUTPUTS)}."),
    yaws: str = typer.Option("0.5,0.25,0,-0.25,-0.5", help="Novel-view yaws (radians)."),
    smooth: float = typer.Option(0.0, help="Video: temporal smoothing of pose and tri-plane in [0, 1) (EMA weight)."),
    max_frames: int | None = typer.Option(None, help="Video: encode at most this many frames."),
    refine: int = typer.Option(0, help="Refine each result with N steps of pose-optimising inversion (slow)."),
    mesh_res: int = typer.Option(64, help="Mesh grid resolution."),
    frames: int = typer.Option(24, help="Orbit video frames."),
    device: str = typer.Option("cpu", help="cpu | cuda."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Lift photos to 3D in one encoder pass: tri-plane (.safetensors), input-view reconstruction, novel views,
    depth, mesh (.ply) and an orbit video; a video is encoded frame by frame into a side-by-side GIF/MP4.

    Example: gan3dkit encode photo.png --ckpt runs/enc/checkpoint.safetensors --out enc_out
    """
    from ..encoders.encode import EncodeOptions, encode_items
    from ..encoders.media import input_kind, list_folder, read_image, read_video, video_backend
    from ..encoders.models import load_encoder

    chosen = tuple(o.strip() for o in outputs.split(",") if o.strip())
    bad = [o for o in chosen if o not in OUTPUTS]
    if bad or not chosen:
        raise ValueError(f"--outputs: unknown {bad}; choose from {', '.join(OUTPUTS)}")
    try:
        yaw_list = tuple(float(y) for y in yaws.split(",") if y.strip())
    except ValueError:
        raise ValueError(f"--yaws must be comma-separated radians, got {yaws!r}") from None
    if refine < 0 or not 0.0 <= smooth < 1.0:
        raise ValueError("--refine must be >= 0 and --smooth in [0, 1)")
    if refine > 0:
        try:
            import gan3dkit.invert  # noqa: F401
        except ImportError as exc:
            raise ValueError(f"--refine needs the inversion package gan3dkit.invert, not importable here: {exc}")
    kind = input_kind(source)
    student, _, header = load_encoder(ckpt, device)
    fps = 12.0
    if kind == "video":
        images, fps = read_video(source, max_frames)
        names = [f"frame{i:05d}" for i in range(len(images))]
    elif kind == "folder":
        files = list_folder(source)
        images, names = [read_image(p) for p in files], [p.stem for p in files]
    else:
        images, names = [read_image(source)], [source.stem]
    cams = [None] * len(images)
    if align:
        res = student.teacher.G.img_resolution
        pairs = [_align(im, res, n) for im, n in zip(images, names)]
        images, cams = [p[0] for p in pairs], [p[1].to(device) for p in pairs]
    out.mkdir(parents=True, exist_ok=True)
    opts = EncodeOptions(yaws=yaw_list, outputs=chosen, mesh_resolution=mesh_res, video_frames=frames,
                         smoothing=smooth, refine_steps=refine)  # fmt: skip
    with progress_bar(f"encode {kind}", total=len(images), json_mode=json_out) as update:
        report = encode_items(student, list(zip(names, images, cams)), out, opts, video=kind == "video", fps=fps,
                              on_item=update)  # fmt: skip
    report.update({"source": str(source), "kind": kind, "camera": "landmarks (--align)" if align else
                   "encoder pose head" if student.encoder.cfg.pose_head else "frontal",
                   "video_backend": video_backend(), "encoder": header["extra"].get("arch", "?")})  # fmt: skip
    if json_out:
        emit_json({k: v for k, v in report.items() if k != "encoder_seconds"})
        return
    c = console()
    c.print(f"[green]encoded[/] {len(images)} {kind} item(s) into {out} "
            f"({report['encoder_ms_mean']:.1f} ms per encoder pass on {device}; camera: {report['camera']})")  # fmt: skip
    if kind == "video":
        c.print("side by side (input | reconstruction | novel view): " + ", ".join(report["video_side_by_side"]))
    first = report["items"][0]
    for key in ("triplane", "reconstruction", "views", "depth", "mesh"):
        if key in first:
            c.print(f"{key}: {first[key]}" + (" (first item)" if len(images) > 1 else ""), soft_wrap=True)
