"""`gan3dkit generate`: multi-view grids with depth, orbit videos and meshes from a checkpoint."""

from __future__ import annotations

import math
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
    from ..cameras.priors import PosePrior
    from ..generate import extract_mesh, load_generator, parse_seeds, render_video, render_views, write_ply
    from ..generate.poses import histogram_series, seed_pose_centers
    from ..generate.poses import pose_histogram as plot_pose_histogram
    from ..train.checkpoint import read_header
    from ..utils.device import resolve_device
    from ..utils.errors import UsageError
    from ..utils.files import atomic_save_png

    seed_list = parse_seeds(seeds)
    try:
        yaw_list = tuple(float(y) for y in yaws.split(",") if y.strip())
    except ValueError:
        raise UsageError(f"--yaws must be comma-separated radians, e.g. 0.4,0,-0.4; got {yaws!r}") from None
    if not yaw_list or not all(math.isfinite(y) for y in yaw_list):
        raise UsageError(f"--yaws needs at least one finite angle, e.g. 0.4,0,-0.4; got {yaws!r}")
    try:
        level = None if mesh_level == "auto" else float(mesh_level)
    except ValueError:
        raise UsageError(f"--mesh-level must be a number or 'auto', got {mesh_level!r}") from None
    if level is not None and not math.isfinite(level):
        raise UsageError(f"--mesh-level must be finite or 'auto', got {mesh_level!r}")
    device = resolve_device(device)
    G, cfg = load_generator(ckpt, device=device)
    trained_nrr = read_header(ckpt)["progress"].get("nrr", cfg.loss.nrr_initial)  # where the NRR fade stopped
    nrr = nrr or trained_nrr
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, list] = {"views": [], "videos": [], "meshes": []}
    header = read_header(ckpt)
    prior = (header.get("extra") or {}).get("pose_prior")
    centers = seed_pose_centers(G, seed_list, pose, PosePrior.from_dict(prior) if prior else None)
    grid, _ = render_views(G, seed_list, yaws=yaw_list, pitch=pitch, psi=trunc, nrr=nrr, centers=centers)
    written["views"].append(str(atomic_save_png(out / "views.png", grid)))
    if pose_histogram:
        series = histogram_series(G, prior, data)
        written["pose_histogram"] = [str(plot_pose_histogram(out / "pose_histogram.png", series))]
    if video or mesh:
        with progress_bar("videos/meshes", total=len(seed_list), json_mode=json_out) as update:
            for i, seed in enumerate(seed_list):
                if video:
                    paths = render_video(G, seed, out / f"seed{seed:04d}", frames=frames, psi=trunc, nrr=nrr)
                    written["videos"] += [str(p) for p in paths]
                if mesh:
                    verts, faces, used = extract_mesh(G, seed, resolution=mesh_res, level=level, psi=trunc)
                    written["meshes"].append(str(write_ply(out / f"seed{seed:04d}.ply", verts, faces)))
                    written.setdefault("mesh_levels", []).append(used)
                update(i + 1, len(seed_list))
    if json_out:
        emit_json({"out": str(out), "seeds": seed_list, **written})
        return
    c = console()
    c.print(f"views (rows: seeds; yaws {', '.join(f'{y:+g}' for y in yaw_list)}, then depth): {written['views'][0]}")
    for key in ("videos", "meshes", "pose_histogram"):
        if written.get(key):
            c.print(f"{key}: " + ", ".join(written[key]), soft_wrap=True)
    if written.get("mesh_levels"):
        c.print("mesh levels used: " + ", ".join(f"{v:.3g}" for v in written["mesh_levels"]))
