"""`prepare cub`: CUB-200-2011 birds cropped around their box, put on white with their mask, cameras from a prior."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .photos import BuildSpec, Item, Outcome, Progress, build_dataset, check_max_images, crop_square, resize

SPLITS = ("train", "test", "all")


@dataclass(frozen=True)
class CubJob:
    resolution: int
    margin: float = 0.1  # extra context around the box, as a fraction of its longer side
    threshold: int = 128  # CUB masks are soft (annotator votes): pixels >= threshold count as bird


def _read_table(path: Path) -> dict[int, list[str]]:
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: --root must be the CUB_200_2011 folder (images.txt, "
                                "bounding_boxes.txt, images/)")
    rows = {}
    for line in path.read_text().splitlines():
        parts = line.split()
        if parts:
            rows[int(parts[0])] = parts[1:]
    return rows


def find_masks(root: Path, masks: str | Path | None) -> Path:
    """The segmentation folder: the given one, else `<root>/segmentations` or `<root>/../segmentations`."""
    if masks is not None:
        if not Path(masks).is_dir():
            raise FileNotFoundError(f"mask folder {masks} not found")
        return Path(masks)
    for cand in (root / "segmentations", root.parent / "segmentations"):
        if cand.is_dir():
            return cand
    raise FileNotFoundError(f"no segmentations/ folder beside or inside {root}; download CUB's segmentations and "
                            "pass --masks DIR")


def list_cub(root: str | Path, masks: str | Path | None = None, split: str = "train") -> list[Item]:
    """CUB items in images.txt order: name = the relative image path; source = (image, mask, box x y w h)."""
    if split not in SPLITS:
        raise ValueError(f"--split must be one of {', '.join(SPLITS)}, got {split!r}")
    root = Path(root)
    images = _read_table(root / "images.txt")
    boxes = _read_table(root / "bounding_boxes.txt")
    mask_dir = find_masks(root, masks)
    train = {k: v[0] == "1" for k, v in _read_table(root / "train_test_split.txt").items()} if split != "all" else {}
    items = []
    for image_id in sorted(images):
        if split != "all" and train.get(image_id) != (split == "train"):
            continue
        rel = images[image_id][0]
        box = [float(v) for v in boxes[image_id]] if image_id in boxes else None
        source = (str(root / "images" / rel), str(mask_dir / Path(rel).with_suffix(".png")), box)
        items.append(Item(name=rel, source=source))
    return items


def process_cub_item(job: CubJob, item: Item) -> Outcome:
    """Worker: square crop centred on the box (white outside the photo), bird on white, binary mask."""
    from ..data.images import ImageError, load_image_file

    image_path, mask_path, box = item.source
    try:
        if box is None:
            raise ValueError("no bounding box in bounding_boxes.txt")
        image = load_image_file(image_path, channels=3)  # [H, W, 3]
        if not Path(mask_path).exists():
            raise ValueError(f"no segmentation mask ({mask_path})")
        mask = load_image_file(mask_path, channels=1)  # [H, W]
        if mask.shape != image.shape[:2]:
            mask = np.asarray(Image.fromarray(mask).resize(image.shape[1::-1], Image.Resampling.BILINEAR))
        x, y, w, h = box
        side = max(1, round(max(w, h) * (1.0 + job.margin)))
        x0, y0 = round(x + w / 2 - side / 2), round(y + h / 2 - side / 2)
        rgb = resize(crop_square(image, x0, y0, side, fill=255), job.resolution)
        alpha = resize(crop_square(mask, x0, y0, side, fill=0), job.resolution, Image.Resampling.BILINEAR)
    except (ImageError, ValueError) as exc:
        return Outcome(item.name, skip=str(exc))
    except Exception as exc:
        return Outcome(item.name, skip=f"{type(exc).__name__}: {exc}")
    a = alpha.astype(np.float32)[..., None] / 255.0
    on_white = np.clip(rgb * a + 255.0 * (1.0 - a) + 0.5, 0, 255).astype(np.uint8)
    binary = np.where(alpha >= job.threshold, 255, 0).astype(np.uint8)
    if not binary.any():
        return Outcome(item.name, skip="empty segmentation mask")
    return Outcome(item.name, image=on_white, mask=binary, camera=None)


def build_cub(root: str | Path, out: str | Path, *, resolution: int = 256, masks: str | Path | None = None,
              split: str = "train", margin: float = 0.1, prior: str = "cub", seed: int = 0, mirror: bool = False,
              max_images: int | None = None, workers: int = 2, resume: bool = True, overwrite: bool = False,
              command: str = "", progress: Progress | None = None) -> tuple[Path, dict[str, Any]]:
    """CUB-200-2011 -> LMDB (image on white, mask, camera, ypr, name). CUB has no cameras: each bird gets one
    sampled from the `cub` prior (seed 000 Table C), drawn reproducibly from (seed, index)."""
    from ..cameras.priors import get_prior

    check_max_images(max_images)
    items = list_cub(root, masks, split)[:max_images]
    settings = {"resolution": resolution, "split": split, "margin": margin, "prior": prior,
                "masks": str(find_masks(Path(root), masks).resolve())}
    spec = BuildSpec(out=Path(out), resolution=resolution, kind="cub",
                     fields=("image", "camera", "ypr", "mask", "name"), prior=get_prior(prior), seed=seed,
                     mirror=mirror, workers=workers, resume=resume, overwrite=overwrite, command=command,
                     settings=settings, list_prior_names=False,
                     source=f"cub:{Path(root).resolve()}")
    return build_dataset(spec, items, process_cub_item, CubJob(resolution, margin), progress=progress)
