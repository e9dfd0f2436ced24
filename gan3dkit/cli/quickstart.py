"""`gan3dkit quickstart`: the main job end to end on an embedded default (data -> train -> views/video/mesh)."""

from __future__ import annotations

import functools
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
    from ..generate.quickstart import QuickstartOptions, run_quickstart

    c = console(json_out)
    bars = functools.partial(progress_bar, json_mode=json_out)
    result, count = run_quickstart(QuickstartOptions(out=out, num=num, minutes=minutes), bars)
    if json_out:
        emit_json(result)
        return
    data, run, level = result["dataset"], result["run"], result["mesh_level"]
    c.print(f"[bold]4/4 done[/] in {result['seconds']:.0f} s. What the quickstart made:")
    rows = [
        ("dataset", f"{data}  ({count} heads 64x64 with camera, depth, mask, pose)"),
        ("dataset picture", f"{result['dataset_picture']}  (images, masks, depth; near = bright)"),
        ("training run", f"{run}  ({result['steps']} steps, {result['kimg']:.2f} kimg; config.json, stats.jsonl)"),
        ("checkpoint", result["checkpoint"]),
        ("training samples", f"{result['samples']}  (rgb, raw, depth)"),
        ("views", f"{result['views']}  (4 seeds x yaw +0.4/0/-0.4, then depth)"),
        ("orbit video", ", ".join(result["videos"])),
        ("mesh", f"{result['mesh']}  (marching cubes at sigma {level:.3g})"),
    ]
    for name, value in rows:
        c.print(f"  {name:<17} {value}", soft_wrap=True, highlight=False)
    c.print(
        f"Train longer: gan3dkit train --data {data} --out {run} --preset tiny --minutes 20  (resumes exactly)",
        soft_wrap=True,
        highlight=False,
    )
