"""`prepare folder` (any images, optional EG3D labels, else a pose prior) and `prepare afhq` (AFHQ cats)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .photos import (
    BuildSpec,
    Item,
    Outcome,
    Progress,
    attach_labels,
    build_dataset,
    center_crop_square,
    check_max_images,
    list_images,
    load_labels,
    pad_square,
    resize,
    upscale_note,
)

CROPS = ("center", "pad", "none")


@dataclass(frozen=True)
class FolderJob:
    """Picklable per-image settings: output size and how non-square images become square."""

    resolution: int
    crop: str = "center"  # center: largest centred square; pad: pad to a square with `fill`; none: must be square
    fill: int = 0


def square_image(image: Any, mode: str, fill: int = 0) -> Any:
    """Make an [H, W, 3] image square per `mode` (see FolderJob); raises ValueError for 'none' on a non-square one."""
    h, w = image.shape[:2]
    if h == w:
        return image
    if mode == "center":
        return center_crop_square(image)
    if mode == "pad":
        return pad_square(image, fill)
    raise ValueError(f"image is {w}x{h}, not square (use --crop center or --crop pad)")


def process_folder_item(job: FolderJob, item: Item) -> Outcome:
    """Worker: read, square, resize; the camera is the item's label (None: the driver samples the prior)."""
    from ..data.images import ImageError, load_image_file

    try:
        image = square_image(load_image_file(item.source, channels=3), job.crop, job.fill)
        notes = upscale_note(image.shape[0], job.resolution)
        image = resize(image, job.resolution)
    except (ImageError, ValueError) as exc:
        return Outcome(item.name, skip=str(exc))
    except Exception as exc:
        return Outcome(item.name, skip=f"{type(exc).__name__}: {exc}")
    return Outcome(item.name, image=image, camera=item.label, notes=notes)


def find_labels(sources: Sequence[str | Path], labels: str | Path | None) -> Path | None:
    """The labels file to use: the given one, else `dataset.json` inside a single folder source, else None."""
    if labels is not None:
        return Path(labels)
    if len(sources) == 1 and Path(sources[0]).is_dir() and (Path(sources[0]) / "dataset.json").exists():
        return Path(sources[0]) / "dataset.json"
    return None


def build_folder(sources: Sequence[str | Path], out: str | Path, *, resolution: int = 256,
                 labels: str | Path | None = None, prior: str | None = None, crop: str = "center", fill: int = 0,
                 mirror: bool = False, seed: int = 0, max_images: int | None = None, workers: int = 2,
                 resume: bool = True, overwrite: bool = False, command: str = "", kind: str = "folder",
                 progress: Progress | None = None) -> tuple[Path, dict[str, Any]]:
    """Images (files, folders, globs) -> LMDB (image, camera, ypr, name), square-cropped and resized.

    Cameras come from EG3D labels (`labels`, or `dataset.json` in a single folder source) matched by relative
    path or file name; images without one get a camera sampled from `prior` (listed in the report under
    `pose_from_prior`), or are skipped when no prior is given.
    """
    from ..cameras.priors import get_prior

    if crop not in CROPS:
        raise ValueError(f"--crop must be one of {', '.join(CROPS)}, got {crop!r}")
    check_max_images(max_images)
    items = list_images(sources)[:max_images]
    label_file = find_labels(sources, labels)
    if label_file is not None:
        attach_labels(items, load_labels(label_file))
    if prior is None and not any(item.label is not None for item in items):
        raise ValueError("no camera labels found (no --labels, no dataset.json in the folder, or no names match); "
                         "give --labels dataset.json or a --prior to sample cameras from")
    prior_obj = get_prior(prior) if prior else None
    settings = {"resolution": resolution, "crop": crop, "fill": fill, "prior": prior,
                "labels": str(label_file.resolve()) if label_file else None,
                "labelled": sum(item.label is not None for item in items)}
    spec = BuildSpec(out=Path(out), resolution=resolution, kind=kind, prior=prior_obj, seed=seed, mirror=mirror,
                     workers=workers, resume=resume, overwrite=overwrite, command=command, settings=settings,
                     source=f"{kind}:" + ", ".join(str(s) for s in sources))
    return build_dataset(spec, items, process_folder_item, FolderJob(resolution, crop, fill), progress=progress)


def build_afhq(sources: Sequence[str | Path], out: str | Path, *, resolution: int = 512,
               labels: str | Path | None = None, prior: str = "afhq", **kwargs: Any) -> tuple[Path, dict[str, Any]]:
    """AFHQ(v2) cats (e.g. `afhq_v2/train/cat`) -> LMDB. EG3D's AFHQ `dataset.json` labels are used where given;
    cats without a label get a camera from the `afhq` prior (seed 000 Table C) and are listed in the report."""
    return build_folder(sources, out, resolution=resolution, labels=labels, prior=prior, kind="afhq", **kwargs)
