"""`gan3dkit prepare ffhq|single|afhq|cub|lsun|folder`: real photos -> aligned, camera-labelled datasets."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from .common import (
    OverwriteOpt,
    ResumeOpt,
    command_line,
    console,
    emit_json,
    handle_errors,
    number_option,
    progress_bar,
    resume_notice,
)

# Options shared by every photo importer (declared once; used as annotations in the command signatures).
OutOpt = Annotated[
    Path,
    typer.Option("--out", help="Output dataset directory, e.g. faces.lmdb (a JSON report goes to <out>.report.json)."),
]
WorkersOpt = Annotated[
    int,
    typer.Option(min=0, help="Worker processes for decoding/detection/cropping (results are written in input order)."),
]
JsonReportOpt = Annotated[bool, typer.Option("--json", help="Print the JSON report on stdout.")]
MirrorOpt = Annotated[
    bool, typer.Option(help="Also write a mirrored copy of each sample with its mirrored camera (<name>_mirror).")
]
BACKEND_HELP = "Landmarks: auto, dlib (offline), mediapipe (0.10.21, offline) or face-alignment (downloads weights)."
SHAPE_HELP = ("3D mean face for PnP head pose: auto = mediapipe68 (shipped, 68 points), meanshape68 (insightface data, "
              "optional) or bfm5 (built-in 5 points).")
UPSCALE_HELP = "Skip faces that the crop would enlarge more than this many times (too small / blurry)."
PRIOR_HELP = "Pose prior preset for images without a camera label (e.g. afhq, cub, lsun_bedroom, lsun_church)."


def _summary(path: Path, report: dict[str, Any], json_out: bool) -> None:
    """Print what was written and why inputs were skipped; --json prints the whole report on stdout."""
    if json_out:
        emit_json(report)
        return
    out = console()
    for item in report.get("skipped", [])[:20]:
        out.print(f"[yellow]skipped[/] {item['name']}: {item['reason']}", highlight=False)
    for item in report.get("notes", [])[:20]:
        out.print(f"[cyan]note[/] {item['name']}: {item['note']}", highlight=False)
    counts = report.get("counts", {})
    if counts:
        out.print(
            f"[green]wrote[/] {path}: {counts['samples_written']} samples from {counts['used']}/"
            f"{counts['inputs']} inputs ({counts['skipped']} skipped"
            + (f", {counts['pose_from_prior']} cameras from the prior" if counts.get("pose_from_prior") else "")
            + f"); report: {path}.report.json",
            highlight=False,
        )


def _build_dataset(
    label: str, builder: Callable[..., tuple[Path, dict[str, Any]]], *args: Any, json_out: bool, **kwargs: Any
) -> None:
    """Run a dataset builder under a progress bar (recording the command line), then print its report.

    `args` are the builder's (source, out); a rerun that continues `<out>.partial` says what it resumes from.
    """
    resume_notice(Path(args[1]), kwargs.get("resume", False), json_out)
    with progress_bar(label, json_mode=json_out) as update:
        path, report = builder(*args, command=command_line(), progress=update, **kwargs)
    _summary(path, report, json_out)


def _backend_line(settings: dict[str, Any], json_out: bool) -> None:
    if settings.get("backend"):
        console(json_out).print(
            f"landmarks: [bold]{settings['backend']}[/] ({settings['backend_choice']}); "
            f"head pose: {settings.get('pose_shape') or 'from the given labels'}",
            highlight=False,
        )


@handle_errors
def ffhq(
    out: OutOpt,
    sources: list[str] = typer.Argument(..., help="Photos: files, folders (recursive) or glob patterns."),
    resolution: int = typer.Option(512, min=16, help="Output size (EG3D: 512)."),
    backend: str = typer.Option("auto", help=BACKEND_HELP),
    detector: str = typer.Option("hog", help="dlib face detector: hog (fast) or cnn (better on hard poses, slow)."),
    pose_shape: str = typer.Option("auto", help=SHAPE_HELP),
    labels: Path | None = typer.Option(None, help="EG3D dataset.json with cameras to use instead of PnP."),
    mirror: MirrorOpt = False,
    max_upscale: float = typer.Option(4.0, callback=number_option(ge=0.1), help=UPSCALE_HELP),
    max_images: int | None = typer.Option(None, min=1, help="Use only the first N inputs (sorted)."),
    workers: WorkersOpt = 2,
    overwrite: OverwriteOpt = False,
    resume: ResumeOpt = True,
    json_out: JsonReportOpt = False,
) -> None:
    """In-the-wild face photos -> EG3D-aligned crops with cameras (radius 2.7, focal 4.2647), FFHQ-style.

    Detect -> landmarks -> Deep3DFaceRecon/EG3D crop (1024/300 -> 700 -> resolution) -> PnP head pose -> label.
    Photos with no face, broken files or faces too small are skipped and listed in the report; with several faces
    the largest is used (noted). Skips never shift the other samples' cameras.

    Example: gan3dkit prepare ffhq photos/ "more/*.jpg" --out faces.lmdb --mirror
    """
    from ..prepare.faces.dataset import build_faces, make_job

    _, settings = make_job(resolution, backend, pose_shape, max_upscale)
    options = {"detector": detector} if settings["backend"] == "dlib" else {}
    _backend_line(settings, json_out)
    _build_dataset(
        "aligning faces",
        build_faces,
        sources,
        out,
        resolution=resolution,
        backend=backend,
        pose_shape=pose_shape,
        labels=labels,
        mirror=mirror,
        max_upscale=max_upscale,
        max_images=max_images,
        workers=workers,
        resume=resume,
        overwrite=overwrite,
        backend_options=options,
        json_out=json_out,
    )


@handle_errors
def single(
    sources: list[str] = typer.Argument(..., help="One photo (or several, files/folders/globs)."),
    out: Path = typer.Option(..., "--out", help="Output folder for <name>.png, <name>.npy and <name>.json."),
    resolution: int = typer.Option(512, min=16, help="Output size (EG3D: 512)."),
    backend: str = typer.Option("auto", help=BACKEND_HELP),
    pose_shape: str = typer.Option("auto", help=SHAPE_HELP),
    mirror: bool = typer.Option(False, help="Also write <name>_mirror.* (flipped crop, mirrored camera)."),
    max_upscale: float = typer.Option(4.0, callback=number_option(ge=0.1), help=UPSCALE_HELP),
    overwrite: bool = typer.Option(False, help="Replace existing output files."),
    json_out: JsonReportOpt = False,
) -> None:
    """Crop one photo the way EG3D's FFHQ was cropped and estimate its camera, for `invert` / `encode`.

    Writes the aligned PNG, its 25-float camera as .npy (what the EG3D inversion repos read) and a .json with the
    camera, yaw/pitch/roll, landmarks and crop box. Exit code 1 when no face could be prepared.

    Example: gan3dkit prepare single me.jpg --out aligned/
    """
    from ..prepare.faces.dataset import make_job, prepare_single

    _, settings = make_job(resolution, backend, pose_shape, max_upscale)
    _backend_line(settings, json_out)
    with progress_bar("aligning", json_mode=json_out) as update:
        report = prepare_single(
            sources,
            out,
            resolution=resolution,
            backend=backend,
            pose_shape=pose_shape,
            mirror=mirror,
            max_upscale=max_upscale,
            overwrite=overwrite,
            progress=update,
        )
    if json_out:
        emit_json(report)
    else:
        c = console()
        for item in report["skipped"]:
            c.print(f"[yellow]skipped[/] {item['name']}: {item['reason']}", highlight=False)
        for item in report["notes"]:
            c.print(f"[cyan]note[/] {item['name']}: {item['note']}", highlight=False)
        for item in report["written"]:
            yaw, pitch, roll = item["ypr_deg"]
            c.print(
                f"[green]wrote[/] {item['png']} (+ .npy, .json): yaw {yaw:+.1f}, pitch {pitch:+.1f}, "
                f"roll {roll:+.1f} deg",
                highlight=False,
            )
    if not report["written"]:
        raise typer.Exit(code=1)


@handle_errors
def afhq(
    out: OutOpt,
    sources: list[str] = typer.Argument(..., help="AFHQ images, e.g. afhq_v2/train/cat (files, folders, globs)."),
    resolution: int = typer.Option(512, min=8, help="Output size (AFHQ is 512)."),
    labels: Path | None = typer.Option(None, help="EG3D's AFHQ dataset.json (default: dataset.json in the folder)."),
    prior: str = typer.Option("afhq", help=PRIOR_HELP),
    crop: str = typer.Option("center", help="Non-square images: center (crop), pad, or none (skip them)."),
    mirror: MirrorOpt = False,
    seed: int = typer.Option(0, help="Seed for cameras sampled from the prior (per input index)."),
    max_images: int | None = typer.Option(None, min=1, help="Use only the first N inputs (sorted)."),
    workers: WorkersOpt = 2,
    overwrite: OverwriteOpt = False,
    resume: ResumeOpt = True,
    json_out: JsonReportOpt = False,
) -> None:
    """AFHQ cats with EG3D's labels; cats without a label get a camera from the prior and are listed in the report.

    Example: gan3dkit prepare afhq afhq_v2/train/cat --labels afhq_dataset.json --out cats.lmdb --mirror
    """
    from ..prepare.folders import build_afhq

    _build_dataset(
        "importing afhq",
        build_afhq,
        sources,
        out,
        resolution=resolution,
        labels=labels,
        prior=prior,
        crop=crop,
        mirror=mirror,
        seed=seed,
        max_images=max_images,
        workers=workers,
        resume=resume,
        overwrite=overwrite,
        json_out=json_out,
    )


@handle_errors
def cub(
    out: OutOpt,
    root: Path = typer.Option(..., "--root", help="The CUB_200_2011 folder (images.txt, bounding_boxes.txt, images/)."),
    masks: Path | None = typer.Option(None, help="Segmentation folder (default: segmentations/ in or beside root)."),
    split: str = typer.Option("train", help="train, test or all (train_test_split.txt)."),
    resolution: int = typer.Option(256, min=8, help="Output size."),
    margin: float = typer.Option(0.1, callback=number_option(ge=0, le=10),
                                 help="Context around the bounding box (fraction of its longer side)."),
    prior: str = typer.Option("cub", help=PRIOR_HELP),
    seed: int = typer.Option(0, help="Seed for the cameras sampled from the prior (per input index)."),
    mirror: MirrorOpt = False,
    max_images: int | None = typer.Option(None, min=1, help="Use only the first N birds."),
    workers: WorkersOpt = 2,
    overwrite: OverwriteOpt = False,
    resume: ResumeOpt = True,
    json_out: JsonReportOpt = False,
) -> None:
    """CUB-200-2011 birds: square crop around the box, bird on white via its mask (stored too), prior cameras.

    Example: gan3dkit prepare cub --root CUB_200_2011 --out birds.lmdb --resolution 256
    """
    from ..prepare.cub import build_cub

    _build_dataset(
        "cropping birds",
        build_cub,
        root,
        out,
        resolution=resolution,
        masks=masks,
        split=split,
        margin=margin,
        prior=prior,
        seed=seed,
        mirror=mirror,
        max_images=max_images,
        workers=workers,
        resume=resume,
        overwrite=overwrite,
        json_out=json_out,
    )


@handle_errors
def lsun(
    out: OutOpt,
    lmdb_path: Path = typer.Option(..., "--lmdb", help="LSUN lmdb export folder, e.g. bedroom_train_lmdb."),
    resolution: int = typer.Option(256, min=8, help="Output size."),
    prior: str | None = typer.Option(None, help="lsun_bedroom / lsun_church (default: from the folder name)."),
    seed: int = typer.Option(0, help="Seed for the cameras sampled from the prior (per input index)."),
    mirror: MirrorOpt = False,
    max_images: int | None = typer.Option(None, min=1, help="Use only the first N records (key order)."),
    workers: WorkersOpt = 2,
    overwrite: OverwriteOpt = False,
    resume: ResumeOpt = True,
    json_out: JsonReportOpt = False,
) -> None:
    """LSUN bedroom/church: decode (JPEG/WebP), centre crop, resize; cameras from the Table C prior.

    Example: gan3dkit prepare lsun --lmdb bedroom_train_lmdb --out bedrooms.lmdb --max-images 100000
    """
    from ..prepare.lsun import build_lsun

    _build_dataset(
        "importing lsun",
        build_lsun,
        lmdb_path,
        out,
        resolution=resolution,
        prior=prior,
        seed=seed,
        mirror=mirror,
        max_images=max_images,
        workers=workers,
        resume=resume,
        overwrite=overwrite,
        json_out=json_out,
    )


@handle_errors
def folder(
    out: OutOpt,
    sources: list[str] = typer.Argument(..., help="Images: files, folders (recursive) or glob patterns."),
    resolution: int = typer.Option(256, min=8, help="Output size."),
    labels: Path | None = typer.Option(None, help="EG3D dataset.json (default: dataset.json in a single folder)."),
    prior: str | None = typer.Option(None, help=PRIOR_HELP + " Without it, unlabelled images are skipped."),
    crop: str = typer.Option("center", help="Non-square images: center (crop), pad, or none (skip them)."),
    fill: int = typer.Option(0, min=0, max=255, help="Padding grey level for --crop pad."),
    mirror: MirrorOpt = False,
    seed: int = typer.Option(0, help="Seed for cameras sampled from the prior (per input index)."),
    max_images: int | None = typer.Option(None, min=1, help="Use only the first N inputs (sorted)."),
    workers: WorkersOpt = 2,
    overwrite: OverwriteOpt = False,
    resume: ResumeOpt = True,
    json_out: JsonReportOpt = False,
) -> None:
    """Any images -> dataset: square crop + resize, cameras from EG3D labels or sampled from a prior.

    Example: gan3dkit prepare folder my_cars/ --prior lsun_church --resolution 128 --out cars.lmdb
    """
    from ..prepare.folders import build_folder

    _build_dataset(
        "importing images",
        build_folder,
        sources,
        out,
        resolution=resolution,
        labels=labels,
        prior=prior,
        crop=crop,
        fill=fill,
        mirror=mirror,
        seed=seed,
        max_images=max_images,
        workers=workers,
        resume=resume,
        overwrite=overwrite,
        json_out=json_out,
    )


#: The photo importers, registered on `gan3dkit prepare` by cli/prepare.py (in this order).
COMMANDS = (ffhq, single, afhq, cub, lsun, folder)
