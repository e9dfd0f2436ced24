"""`gan3dkit invert`: photos / aligned crops / datasets -> latent, camera, tuned generator, novel views, mesh."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from .common import console, emit_json, handle_errors, items_progress

if TYPE_CHECKING:
    from ..invert import InvertConfig

METHOD_HELP = ("w | wplus (PTI's projector only) | pti (w pivot + pivotal tuning) | ko (Ko et al. WACV'23). "
               "Default: ko with --pose-opt, else pti.")
ALGORITHM_HELP = ("For --method ko, seed 002's algorithms: 1 = Ko et al. (alternating w / pose steps with the "
                  "depth-based warp loss, learnable translation, then tuning with depth smoothness); 2 = the given "
                  "camera kept fixed, then pivotal tuning (PTI baseline); 3 = joint gradient descent on (w, pose), "
                  "then pivotal tuning.")


@handle_errors
def invert(
    source: Path = typer.Argument(
        ..., help="A photo, an aligned crop, a folder of images, or a gan3dkit LMDB dataset."
    ),
    ckpt: Path = typer.Option(..., "--ckpt", help="Generator checkpoint (.safetensors from `gan3dkit train`)."),
    out: Path = typer.Option(Path("inversion"), "--out", help="Output folder (one subfolder per item for folders)."),
    method: str | None = typer.Option(None, "--method", help=METHOD_HELP),
    algorithm: int = typer.Option(1, "--algorithm", min=1, max=3, help=ALGORITHM_HELP),
    camera: str | None = typer.Option(None, "--camera", help="25-float camera (.json / .npy) of an aligned crop, or "
                                      "'frontal'. Default: <image>.npy/.json beside it, else face crop + PnP pose."),
    pose_opt: bool = typer.Option(False, "--pose-opt/--no-pose-opt", help="Optimise the camera too (w/wplus/pti: "
                                  "joint, Alg. 3 style; ko: its algorithm decides)."),
    align: str = typer.Option("auto", help="Face crop of the input: auto (only when no camera is known) | always | "
                              "never."),
    backend: str = typer.Option("auto", help="Face landmark backend for uncropped photos (see `prepare single`)."),
    steps: int | None = typer.Option(None, help="Projector steps (PTI 450, Ko 400)."),
    tune_steps: int | None = typer.Option(None, help="Generator tuning steps (PTI 350, Ko 400; 0 = none)."),
    perceptual: str = typer.Option("auto", help="Projector loss: auto | vgg-lpips | alex-lpips | random-vgg-lpips | "
                                   "none. auto = VGG-LPIPS (PTI's), pretrained: a missing backbone is an error naming "
                                   "`gan3dkit weights add`; none / random-vgg-lpips only when asked for."),
    vgg_weights: str | None = typer.Option(None, help="torchvision vgg16-397923af.pth (file or URL) for VGG-LPIPS "
                                           "and the warp features."),
    pose_encoder: Path | None = typer.Option(None, help="Ko et al. pose estimator P (`distill-encoder --arch "
                                             "ko-pose`)."),
    latent_encoder: Path | None = typer.Option(None, help="Ko et al. latent encoder E (`distill-encoder --arch "
                                               "ko-latent`)."),
    outputs: str = typer.Option("views,video,mesh", help="Extra outputs: any of views, video, mesh ('' = none)."),
    mesh_res: int = typer.Option(64, min=16, help="Mesh grid resolution per axis."),
    frames: int = typer.Option(24, min=2, help="Orbit video frames."),
    set_: list[str] = typer.Option([], "--set", help="Override a config value, e.g. --set tune.locality=true."),
    device: str = typer.Option("cpu", help="cpu | cuda."),
    resume: bool = typer.Option(True, "--resume/--restart", help="Skip items already done (their metrics.json "
                                "exists); --restart redoes them."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Invert images into a generator: latent w (w+), camera, optional tuned generator, novel views, orbit, mesh.

    Writes w.npy, camera.json (before/after), reconstruction.png (input | projected | tuned), views.png,
    orbit.gif, depth.png/.npy, mesh.ply, generator_delta.safetensors (pti/ko: changed tensors + base sha256) and
    metrics.json (reconstruction metrics, pose before/after, time per stage, which losses really ran).
    Folders and datasets invert every item into <out>/<name>/, resumably; under torchrun items are sharded.

    Example: gan3dkit invert me.jpg --ckpt runs/ffhq/checkpoint.safetensors --pose-opt --out me_3d
    """
    from ..encoders.ko import load_ko_encoder
    from ..invert import METHODS
    from ..invert.entry import OUTPUT_CHOICES, InvertOptions, run_invert
    from ..utils.items import exit_code

    if method is not None and method not in METHODS:
        raise typer.BadParameter(f"--method must be w, wplus, pti or ko, got {method!r}")
    if align not in ("auto", "always", "never"):
        raise typer.BadParameter("--align must be auto, always or never")
    wanted = tuple(o.strip() for o in outputs.split(",") if o.strip())
    bad = set(wanted) - set(OUTPUT_CHOICES)
    if bad:
        raise typer.BadParameter(f"--outputs: unknown {sorted(bad)}; choose from views, video, mesh")
    opts = InvertOptions(source=source, ckpt=ckpt, out=out, method=method, algorithm=algorithm, camera=camera,
                         pose_opt=pose_opt, align=align, backend=backend, steps=steps, tune_steps=tune_steps,
                         perceptual=perceptual, vgg_weights=vgg_weights, pose_encoder=pose_encoder,
                         latent_encoder=latent_encoder, outputs=wanted, mesh_res=mesh_res, frames=frames,
                         overrides=set_, device=device, resume=resume)
    c = console(json_out)

    def announce(cfg: InvertConfig) -> None:
        if not json_out:
            what = {"w": "W projector", "wplus": "W+ projector", "pti": "W projector + PTI",
                    "ko": f"Ko et al. Alg. {algorithm}"}[cfg.method]
            c.print(f"inverting {source} with {what} "
                    f"({'pose optimised' if cfg.optimizes_pose else 'camera fixed'})", highlight=False)

    report = run_invert(opts, load_encoder=load_ko_encoder, on_ready=announce,
                        progress=lambda: items_progress(json_out))
    if json_out:
        emit_json(report)
    else:
        _print_report(c, report)
    if exit_code(report):
        raise typer.Exit(code=1)


def _print_report(c: Console, report: dict) -> None:
    for it in report["items"]:
        a = it["pose_after"]
        rec = it["reconstruction"].get("tuned") or it["reconstruction"]["projected"]
        c.print(f"[green]done[/] {it['name']} -> {it['out']}: yaw {a['yaw']:+.3f}, pitch {a['pitch']:+.3f} rad; "
                f"PSNR {rec['psnr']:.2f} dB, SSIM {rec['ssim']:.3f}; {it['time']['total_s']:.1f} s",
                highlight=False)
        for note in it.get("notes", []):
            c.print(f"[cyan]note[/] {it['name']}: {note}", highlight=False)
    for it in report["skipped"]:
        c.print(f"[cyan]skipped[/] {it['name']}: {it['reason']}", highlight=False)
    for it in report["failed"]:
        c.print(f"[yellow]failed[/] {it['name']}: {it['error']}", highlight=False)
    if report["items"]:
        first = Path(report["items"][0]["out"]) / "metrics.json"
        c.print(f"metrics (losses that really ran, pose before/after, time per stage): {first}", highlight=False)
