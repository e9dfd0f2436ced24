"""The quickstart as one call: synthetic heads -> a tiny EG3D trained for some minutes -> views, orbit video, mesh."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..utils.progress import Bars, no_bars


@dataclass
class QuickstartOptions:
    """What `gan3dkit quickstart` was asked (one field per option; see its --help)."""

    out: Path = Path("gan3dkit-quickstart")
    num: int = 512
    minutes: float = 3.0


def run_quickstart(opts: QuickstartOptions, progress: Bars = no_bars) -> tuple[dict[str, Any], int]:
    """Render the dataset (once), validate it, train (resuming), render views/video/mesh. Returns the report
    (`gan3dkit quickstart --json`) and the number of heads in the dataset."""
    from ..data.summary import contact_sheet
    from ..data.validate import validate_dataset
    from ..prepare.synthetic import build_synthetic
    from ..train.config import train_preset
    from ..train.loop import train
    from ..utils.config import apply_overrides
    from ..utils.files import atomic_save_png
    from . import extract_mesh, load_generator, render_video, render_views, write_ply

    t0 = time.time()
    out, num, minutes = opts.out, opts.num, opts.minutes
    out.mkdir(parents=True, exist_ok=True)
    data, run = out / "heads.lmdb", out / "run"
    if not data.exists():
        with progress("1/4 rendering synthetic heads", num) as update:
            build_synthetic(data, family="heads", num=num, resolution=64, resume=True,
                            command=f"gan3dkit quickstart --out {out}", progress=update)
    report = validate_dataset(data)
    if not report.ok:
        raise ValueError(f"quickstart dataset failed validation: {report.bad[:3]} {report.errors}")
    sheet = atomic_save_png(out / "dataset.png", contact_sheet(data, num=16))
    cfg = apply_overrides(
        train_preset("tiny"),
        [f'data="{data}"', f'out="{run}"', f"run.max_minutes={minutes}", "run.kimg=100000", "run.workers=1"],
    )
    with progress(f"2/4 training tiny EG3D for {minutes:g} min", int(minutes * 60)) as update:
        start = time.time()
        summary = train(
            cfg,
            resume=True,
            on_step=lambda n, t: update(min(int(time.time() - start), int(minutes * 60)), int(minutes * 60)),
        )
    G, _ = load_generator(run / "checkpoint.safetensors")
    with progress("3/4 rendering views, video, mesh", 3) as update:
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
    return result, report.count
