"""`gan3dkit quickstart`: the main job end to end on an embedded default (data -> train -> views/video/mesh)."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from .common import console, emit_json, handle_errors, progress_bar


@handle_errors
def quickstart(
    out: Path = typer.Option(Path("gan3dkit-quickstart"), "--out", help="Folder for everything the run makes."),
    num: int = typer.Option(512, min=16, help="Synthetic heads to render."),
    minutes: float = typer.Option(3.0, min=0.0, help="Training time for the tiny preset (CPU minutes)."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Render synthetic heads with true pose/depth, train a tiny EG3D on them, and render views, video and a mesh.

    Takes about 4 minutes on 2 CPU cores with the defaults. Rerunning resumes the training where it stopped.

    Example: gan3dkit quickstart --out demo --minutes 3
    """
    from ..data.summary import contact_sheet
    from ..data.validate import validate_dataset
    from ..generate import extract_mesh, load_generator, render_video, render_views, write_ply
    from ..prepare.synthetic import build_synthetic
    from ..train.config import train_preset
    from ..train.loop import train
    from ..utils.config import apply_overrides
    from ..utils.files import atomic_save_png

    t0 = time.time()
    out.mkdir(parents=True, exist_ok=True)
    data, run = out / "heads.lmdb", out / "run"
    c = console(json_out)
    if not data.exists():
        with progress_bar("1/4 rendering synthetic heads", total=num, json_mode=json_out) as update:
            build_synthetic(
                data,
                family="heads",
                num=num,
                resolution=64,
                resume=True,
                command=f"gan3dkit quickstart --out {out}",
                progress=update,
            )
    report = validate_dataset(data)
    if not report.ok:
        raise ValueError(f"quickstart dataset failed validation: {report.bad[:3]} {report.errors}")
    sheet = atomic_save_png(out / "dataset.png", contact_sheet(data, num=16))
    cfg = apply_overrides(
        train_preset("tiny"),
        [f'data="{data}"', f'out="{run}"', f"run.max_minutes={minutes}", "run.kimg=100000", "run.workers=1"],
    )
    with progress_bar(
        f"2/4 training tiny EG3D for {minutes:g} min", total=int(minutes * 60), json_mode=json_out
    ) as update:
        start = time.time()
        summary = train(
            cfg,
            resume=True,
            on_step=lambda n, t: update(min(int(time.time() - start), int(minutes * 60)), int(minutes * 60)),
        )
    G, _ = load_generator(run / "checkpoint.safetensors")
    with progress_bar("3/4 rendering views, video, mesh", total=3, json_mode=json_out) as update:
        grid, _ = render_views(G, [0, 1, 2, 3], nrr=cfg.loss.nrr_initial)
        views = atomic_save_png(out / "views.png", grid)
        update(1, 3)
        videos = render_video(G, 0, out / "orbit", frames=48, nrr=cfg.loss.nrr_initial)
        update(2, 3)
        verts, faces, level = extract_mesh(G, 0, resolution=96, level=None)
        mesh = write_ply(out / "seed0000.ply", verts, faces)
        update(3, 3)
    result = {
        "dataset": str(data),
        "dataset_picture": str(sheet),
        "run": str(run),
        "checkpoint": summary["checkpoint"],
        "kimg": summary["nimg"] / 1000,
        "steps": summary["steps"],
        "samples": str(run / "samples"),
        "views": str(views),
        "videos": [str(v) for v in videos],
        "mesh": str(mesh),
        "mesh_level": level,
        "seconds": round(time.time() - t0, 1),
    }
    if json_out:
        emit_json(result)
        return
    c.print(f"[bold]4/4 done[/] in {result['seconds']:.0f} s. What the quickstart made:")
    rows = [
        ("dataset", f"{data}  ({report.count} heads 64x64 with camera, depth, mask, pose)"),
        ("dataset picture", f"{sheet}  (images, masks, depth; near = bright)"),
        ("training run", f"{run}  ({summary['steps']} steps, {result['kimg']:.2f} kimg; config.json, stats.jsonl)"),
        ("checkpoint", summary["checkpoint"]),
        ("training samples", f"{run / 'samples'}  (rgb, raw, depth)"),
        ("views", f"{views}  (4 seeds x yaw +0.4/0/-0.4, then depth)"),
        ("orbit video", ", ".join(result["videos"])),
        ("mesh", f"{mesh}  (marching cubes at sigma {level:.3g})"),
    ]
    for name, value in rows:
        c.print(f"  {name:<17} {value}", soft_wrap=True, highlight=False)
    c.print(
        f"Train longer: gan3dkit train --data {data} --out {run} --preset tiny --minutes 20  (resumes exactly)",
        soft_wrap=True,
        highlight=False,
    )
