"""`generate` as one call: typed options -> multi-view grid with depth, optional pose histogram, videos and meshes."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..utils.progress import Bars, no_bars


@dataclass
class GenerateOptions:
    """What `gan3dkit generate` was asked (one field per option; see its --help)."""

    ckpt: Path
    out: Path
    seeds: str = "0-7"
    trunc: float = 1.0
    yaws: str = "0.4,0,-0.4"
    pitch: float = -0.2
    nrr: int | None = None
    pose: str = "frontal"
    pose_histogram: bool = False
    data: Path | None = None
    video: bool = False
    frames: int = 60
    mesh: bool = False
    mesh_res: int = 128
    mesh_level: str = "10"
    device: str = "cpu"


def parse_yaws(yaws: str) -> tuple[float, ...]:
    """`--yaws` as radians: comma-separated, at least one, all finite (a UsageError names the option)."""
    from ..utils.errors import UsageError

    try:
        yaw_list = tuple(float(y) for y in yaws.split(",") if y.strip())
    except ValueError:
        raise UsageError(f"--yaws must be comma-separated radians, e.g. 0.4,0,-0.4; got {yaws!r}") from None
    if not yaw_list or not all(math.isfinite(y) for y in yaw_list):
        raise UsageError(f"--yaws needs at least one finite angle, e.g. 0.4,0,-0.4; got {yaws!r}")
    return yaw_list


def _mesh_level(text: str) -> float | None:
    from ..utils.errors import UsageError

    try:
        level = None if text == "auto" else float(text)
    except ValueError:
        raise UsageError(f"--mesh-level must be a number or 'auto', got {text!r}") from None
    if level is not None and not math.isfinite(level):
        raise UsageError(f"--mesh-level must be finite or 'auto', got {text!r}")
    return level


def run_generate(opts: GenerateOptions, progress: Bars = no_bars) -> dict[str, Any]:
    """Render every seed from the yaws (EG3D's gen_samples views) into `out/views.png`, plus what was asked. Returns
    the report (`gan3dkit generate --json`): out, seeds, views, videos, meshes, and mesh_levels / pose_histogram."""
    from ..cameras.priors import PosePrior
    from ..train.checkpoint import read_header
    from ..utils.device import resolve_device
    from ..utils.files import atomic_save_png
    from . import extract_mesh, load_generator, parse_seeds, render_video, render_views, write_ply
    from .poses import histogram_series, seed_pose_centers
    from .poses import pose_histogram as plot_pose_histogram

    out, trunc = opts.out, opts.trunc
    seed_list = parse_seeds(opts.seeds)
    yaw_list = parse_yaws(opts.yaws)
    level = _mesh_level(opts.mesh_level)
    device = resolve_device(opts.device)
    G, cfg = load_generator(opts.ckpt, device=device)
    trained_nrr = read_header(opts.ckpt)["progress"].get("nrr", cfg.loss.nrr_initial)  # where the NRR fade stopped
    nrr = opts.nrr or trained_nrr
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, list] = {"views": [], "videos": [], "meshes": []}
    header = read_header(opts.ckpt)
    prior = (header.get("extra") or {}).get("pose_prior")
    centers = seed_pose_centers(G, seed_list, opts.pose, PosePrior.from_dict(prior) if prior else None)
    grid, _ = render_views(G, seed_list, yaws=yaw_list, pitch=opts.pitch, psi=trunc, nrr=nrr, centers=centers)
    written["views"].append(str(atomic_save_png(out / "views.png", grid)))
    if opts.pose_histogram:
        series = histogram_series(G, prior, opts.data)
        written["pose_histogram"] = [str(plot_pose_histogram(out / "pose_histogram.png", series))]
    if opts.video or opts.mesh:
        with progress("videos/meshes", len(seed_list)) as update:
            for i, seed in enumerate(seed_list):
                if opts.video:
                    paths = render_video(G, seed, out / f"seed{seed:04d}", frames=opts.frames, psi=trunc, nrr=nrr)
                    written["videos"] += [str(p) for p in paths]
                if opts.mesh:
                    verts, faces, used = extract_mesh(G, seed, resolution=opts.mesh_res, level=level, psi=trunc)
                    written["meshes"].append(str(write_ply(out / f"seed{seed:04d}.ply", verts, faces)))
                    written.setdefault("mesh_levels", []).append(used)
                update(i + 1, len(seed_list))
    return {"out": str(out), "seeds": seed_list, **written}
