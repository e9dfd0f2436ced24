"""`gan3dkit generate`: multi-view grids with depth, orbit videos and meshes from a checkpoint."""

from __future__ import annotations

import functools
from pathlib import Path

import typer

from ..methods.registry import learned_pose_methods
from .common import console, emit_json, handle_errors, number_option, progress_bar


@handle_errors
def generate(
    ckpt: Path = typer.Option(..., "--ckpt", help="Checkpoint (.safetensors) written by `gan3dkit train`."),
    out: Path = typer.Option(..., "--out", help="Output folder."),
    seeds: str = typer.Option("0-7", help="Seeds, e.g. 0-7 or 1,5,9."),
    trunc: float = typer.Option(1.0, callback=number_option(ge=-2, le=2), help="Truncation psi (1 = none)."),
    yaws: str = typer.Option("0.4,0,-0.4", help="View yaws in radians from frontal (EG3D gen_samples: 0.4,0,-0.4)."),
    pitch: float = typer.Option(-0.2, callback=number_option(ge=-1.57, le=1.57),
                                help="View pitch in radians (EG3D gen_samples: -0.2)."),
    nrr: int | None = typer.Option(None, min=8, max=1024,
                                   help="Neural rendering resolution (default: the trained one)."),
    pose: str = typer.Option("frontal", help="Centre of each seed's views: frontal, learned (the pose G itself picks "
                             f"for the seed: {', '.join(learned_pose_methods())}) or prior (a draw from the "
                             "training prior)."),
    pose_histogram: bool = typer.Option(False, help="Also plot pose_histogram.png: G's learned yaw/pitch "
                                        "distribution against the training prior and, with --data, the dataset's."),
    data: Path | None = typer.Option(None, help="Dataset whose camera labels the pose histogram shows."),
    video: bool = typer.Option(False, help="Also render an orbit video per seed (GIF; MP4 with imageio-ffmpeg)."),
    frames: int = typer.Option(60, min=1, help="Video frames."),
    mesh: bool = typer.Option(False, help="Also extract a mesh per seed (.ply, marching cubes on sigma)."),
    mesh_res: int = typer.Option(128, min=8, max=1024, help="Mesh grid resolution per axis."),
    mesh_level: str = typer.Option("10", help="Density level of the surface (EG3D/ChimeraX use 10), or 'auto'."),
    device: str = typer.Option("cpu", help="cpu | cuda | cuda:N."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Render seeds from three yaws with depth maps (EG3D's gen_samples views), plus optional videos and meshes.

    Example: gan3dkit generate --ckpt runs/heads/checkpoint.safetensors --seeds 0-3 --out gen --video --mesh

    Example: gan3dkit generate --ckpt runs/faces/checkpoint.safetensors --pose learned --pose-histogram --data ffhq.lmdb
    """
    from ..generate.entry import GenerateOptions, parse_yaws, run_generate

    opts = GenerateOptions(ckpt=ckpt, out=out, seeds=seeds, trunc=trunc, yaws=yaws, pitch=pitch, nrr=nrr, pose=pose,
                           pose_histogram=pose_histogram, data=data, video=video, frames=frames, mesh=mesh,
                           mesh_res=mesh_res, mesh_level=mesh_level, device=device)
    report = run_generate(opts, functools.partial(progress_bar, json_mode=json_out))
    if json_out:
        emit_json(report)
        return
    c = console()
    c.print(f"views (rows: seeds; yaws {', '.join(f'{y:+g}' for y in parse_yaws(yaws))}, then depth): "
            f"{report['views'][0]}")
    for key in ("videos", "meshes", "pose_histogram"):
        if report.get(key):
            c.print(f"{key}: " + ", ".join(report[key]), soft_wrap=True)
    if report.get("mesh_levels"):
        c.print("mesh levels used: " + ", ".join(f"{v:.3g}" for v in report["mesh_levels"]))
