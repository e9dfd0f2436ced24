"""`gan3dkit prepare ...`: turn sources (synthetic scenes, EG3D zips/folders) into gan3dkit LMDB datasets."""

from __future__ import annotations

from pathlib import Path

import typer

from . import prepare_photos
from .common import (
    DatasetOutOpt,
    JsonOpt,
    OverwriteOpt,
    ResumeOpt,
    command_line,
    console,
    emit_json,
    handle_errors,
    progress_bar,
    resume_notice,
)

app = typer.Typer(help="Build gan3dkit LMDB datasets from sources.", no_args_is_help=True)


@app.command()
@handle_errors
def synthetic(
    out: DatasetOutOpt,
    family: str = typer.Option("heads", help="Scene family: heads (front-facing) or objects (360-degree cars)."),
    num: int = typer.Option(1000, min=1, help="Number of images."),
    resolution: int = typer.Option(64, min=8, help="Image size in pixels (square)."),
    prior: str | None = typer.Option(None, help="Pose prior preset (default: the family's own; see `data_specs`)."),
    seed: int = typer.Option(0, help="Dataset seed; sample i depends only on (seed, i)."),
    ssaa: int = typer.Option(2, min=1, max=4, help="Supersampling factor for colour (depth/mask use centre rays)."),
    batch: int = typer.Option(64, min=1, help="Scenes rendered (and committed) at a time; never changes the data."),
    overwrite: OverwriteOpt = False,
    resume: ResumeOpt = True,
    json_out: JsonOpt = False,
) -> None:
    """Render procedural 3D scenes with true camera, depth and mask (ground truth for pose-free methods).

    Example: gan3dkit prepare synthetic --family heads --num 2000 --resolution 64 --out heads.lmdb
    """
    from ..prepare.synthetic import FAMILIES, build_synthetic

    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; choose one of {', '.join(FAMILIES)}")
    resume_notice(out, resume, json_out)
    with progress_bar(f"rendering {family}", total=num, json_mode=json_out) as update:
        path = build_synthetic(
            out,
            family=family,
            num=num,
            resolution=resolution,
            prior=prior,
            seed=seed,
            ssaa=ssaa,
            batch_size=batch,
            overwrite=overwrite,
            resume=resume,
            command=command_line(),
            progress=update,
        )
    _done(path, json_out)


@app.command()
@handle_errors
def eg3d(
    out: DatasetOutOpt,
    src: Path = typer.Argument(..., help="EG3D dataset: a zip or a folder with dataset.json."),
    resolution: int | None = typer.Option(None, min=8, help="Resize to this size (default: the first image's size)."),
    prior: str | None = typer.Option(None, help="Record this pose prior preset with the dataset."),
    max_images: int | None = typer.Option(None, min=1, help="Import only the first N images (sorted by name)."),
    strict: bool = typer.Option(False, help="Fail on the first bad image/label instead of skipping it."),
    overwrite: OverwriteOpt = False,
    resume: ResumeOpt = True,
    json_out: JsonOpt = False,
) -> None:
    """Import an EG3D dataset (zip or folder of images + dataset.json labels), e.g. FFHQ_512.zip.

    Bad images or labels are skipped and listed (never shifting later labels); odd labels (duplicates, labels
    without a file) are listed as notes; --strict fails instead. A rerun after an interruption resumes.

    Example: gan3dkit prepare eg3d FFHQ_512.zip --out ffhq512.lmdb
    """
    from ..cameras.priors import get_prior
    from ..data.eg3d_zip import import_eg3d

    prior_dict = get_prior(prior).to_dict() if prior else None
    resume_notice(out, resume, json_out)
    with progress_bar("importing", json_mode=json_out) as update:
        path, report = import_eg3d(
            src,
            out,
            resolution=resolution,
            pose_prior=prior_dict,
            max_images=max_images,
            strict=strict,
            overwrite=overwrite,
            resume=resume,
            command=command_line(),
            progress=update,
        )
    if not json_out:
        out_c = console()
        for item in report["skipped"][:20]:
            out_c.print(f"[yellow]skipped[/] {item['name']}: {item['reason']}", highlight=False, soft_wrap=True)
        if len(report["skipped"]) > 20:
            out_c.print(f"... {len(report['skipped']) - 20} more skipped (see `gan3dkit data info {path} --json`)")
        for item in report["notes"][:20]:
            out_c.print(f"[cyan]note[/] {item['name']}: {item['note']}", highlight=False, soft_wrap=True)
        for item in report["label_issues"][:20]:
            out_c.print(f"[cyan]note[/] {item['name']}: {item['issue']}", highlight=False, soft_wrap=True)
        if len(report["label_issues"]) > 20:
            out_c.print(f"... {len(report['label_issues']) - 20} more label notes (see `gan3dkit data info {path} "
                        "--json`)")
    _done(path, json_out, report)


def _done(path: Path, json_out: bool, report: dict | None = None) -> None:
    from ..data.reader import read_meta

    meta = read_meta(path)
    if json_out:
        emit_json(
            {
                "out": str(path),
                "count": meta["count"],
                "resolution": meta["resolution"],
                "fields": meta["fields"],
                "report": report,
            }
        )
    else:
        console().print(
            f"[green]wrote[/] {path}: {meta['count']} samples at {meta['resolution']}x{meta['resolution']}"
            f" ({', '.join(meta['fields'])})"
        )


for _command in prepare_photos.COMMANDS:  # ffhq, single, afhq, cub, lsun, folder
    app.command()(_command)
