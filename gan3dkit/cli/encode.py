"""`gan3dkit encode`: photo, folder or video -> tri-planes and renders with a distilled encoder (one pass each)."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import console, emit_json, handle_errors, progress_bar

OUTPUTS = ("triplane", "reconstruction", "views", "depth", "mesh", "video")


def _align(image, resolution: int, name: str):
    """EG3D-style face crop + head-pose camera (the `prepare single` pipeline); DataError when no face is found."""
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
        from ..utils.errors import DataError

        raise DataError(f"{name}: --align failed ({type(exc).__name__}: {exc})") from None
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
    from ..encoders.encode import EncodeOptions, encode_source
    from ..encoders.media import input_kind, video_backend
    from ..encoders.models import load_encoder
    from ..utils.device import resolve_device
    from ..utils.errors import UsageError, check_number
    from ..utils.items import check_out_folder, exit_code

    chosen = tuple(o.strip() for o in outputs.split(",") if o.strip())
    bad = [o for o in chosen if o not in OUTPUTS]
    if bad or not chosen:
        raise UsageError(f"--outputs: unknown {bad}; choose from {', '.join(OUTPUTS)}")
    try:
        yaw_list = tuple(float(y) for y in yaws.split(",") if y.strip())
    except ValueError:
        raise UsageError(f"--yaws must be comma-separated radians, got {yaws!r}") from None
    for y in yaw_list:
        check_number("--yaws", y)
    if not yaw_list:
        raise UsageError("--yaws needs at least one yaw (radians)")
    check_number("--smooth", smooth, ge=0.0, lt=1.0)
    check_number("--refine", refine, ge=0, integer=True)
    check_number("--mesh-res", mesh_res, ge=16, le=1024, integer=True)
    check_number("--frames", frames, ge=2, integer=True)
    check_number("--max-frames", max_frames, ge=1, integer=True, allow_none=True)
    if refine > 0:
        try:
            import gan3dkit.invert  # noqa: F401
        except ImportError as exc:
            raise UsageError(
                f"--refine needs the inversion package gan3dkit.invert, not importable here: {exc}"
            ) from exc
    device = resolve_device(device)
    kind = input_kind(source)
    check_out_folder(out, source)
    student, _, header = load_encoder(ckpt, device)
    opts = EncodeOptions(yaws=yaw_list, outputs=chosen, mesh_resolution=mesh_res, video_frames=frames,
                         smoothing=smooth, refine_steps=refine)  # fmt: skip
    res = student.teacher.G.img_resolution
    with progress_bar(f"encode {kind}", total=None, json_mode=json_out) as update:
        report = encode_source(student, source, kind, out, opts, max_frames=max_frames, on_item=update,
                               align=(lambda image, name: _align(image, res, name)) if align else None)  # fmt: skip
    report.update({"source": str(source), "kind": kind, "camera": "landmarks (--align)" if align else
                   "encoder pose head" if student.encoder.cfg.pose_head else "frontal",
                   "video_backend": video_backend(), "encoder": header["extra"].get("arch", "?")})  # fmt: skip
    if json_out:
        emit_json({k: v for k, v in report.items() if k != "encoder_seconds"})
    else:
        _print_report(report, kind, out, device)
    if exit_code(report):
        raise typer.Exit(code=1)


def _print_report(report: dict, kind: str, out: Path, device: str) -> None:
    c = console()
    done = report["items"]
    if done:
        c.print(f"[green]encoded[/] {len(done)} {kind} item(s) into {out} ({report['encoder_ms_mean']:.1f} ms per "
                f"encoder pass on {device}; camera: {report['camera']})", highlight=False)  # fmt: skip
    if kind == "video" and "video_side_by_side" in report:
        c.print("side by side (input | reconstruction | novel view): " + ", ".join(report["video_side_by_side"]))
    for key in ("triplane", "reconstruction", "views", "depth", "mesh"):
        if done and key in done[0]:
            c.print(f"{key}: {done[0][key]}" + (" (first item)" if len(done) > 1 else ""), soft_wrap=True)
    for it in done:
        for note in it.get("notes", []):
            c.print(f"[cyan]note[/] {it['name']}: {note}", highlight=False, soft_wrap=True)
    for it in report["failed"]:
        c.print(f"[yellow]failed[/] {it['name']}: {it['error']}", highlight=False, soft_wrap=True)
