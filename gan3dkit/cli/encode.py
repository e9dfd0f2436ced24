"""`gan3dkit encode`: photo, folder or video -> tri-planes and renders with a distilled encoder (one pass each)."""

from __future__ import annotations

import functools
from pathlib import Path

import typer

from .common import console, emit_json, handle_errors, progress_bar

#: The outputs to choose from, for --help without torch (encoders.entry.OUTPUTS checks them; a test ties both).
OUTPUTS = ("triplane", "reconstruction", "views", "depth", "mesh", "video")


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
    refine_set: list[str] = typer.Option([], "--refine-set", help="Override the refinement's inversion config, e.g. "
                                         "--refine-set perceptual=none (pixel L2 instead of the pretrained LPIPS)."),
    mesh_res: int = typer.Option(64, help="Mesh grid resolution."),
    frames: int = typer.Option(24, help="Orbit video frames."),
    device: str = typer.Option("cpu", help="cpu | cuda."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Lift photos to 3D in one encoder pass: tri-plane (.safetensors), input-view reconstruction, novel views,
    depth, mesh (.ply) and an orbit video; a video is encoded frame by frame into a side-by-side GIF/MP4.

    Example: gan3dkit encode photo.png --ckpt runs/enc/checkpoint.safetensors --out enc_out
    """
    from ..encoders.entry import EncodeRequest, run_encode
    from ..utils.items import exit_code

    req = EncodeRequest(source=source, ckpt=ckpt, out=out, align=align, outputs=outputs, yaws=yaws, smooth=smooth,
                        max_frames=max_frames, refine=refine, refine_set=tuple(refine_set), mesh_res=mesh_res,
                        frames=frames, device=device)
    report, used = run_encode(req, functools.partial(progress_bar, json_mode=json_out))
    if json_out:
        emit_json({k: v for k, v in report.items() if k != "encoder_seconds"})
    else:
        _print_report(report, report["kind"], out, used)
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
