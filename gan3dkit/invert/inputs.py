"""Inversion inputs: aligned crop + camera (JSON/.npy/LMDB field), uncropped photo -> face crop + PnP pose, folders."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import numpy as np
from PIL import Image

from ..cameras.camera import LABEL_DIM, check_label
from ..data.images import ImageError, load_still_image, resize_notes
from ..utils.items import Item, folder_items

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


class InputError(ValueError):
    """An input that cannot be inverted; the message says why and what to do."""


@dataclass
class InvertItem:
    """One image to invert, resized to the generator's resolution, with its camera (or None: estimate it)."""

    name: str
    image: np.ndarray  # [S, S, 3] uint8
    camera: np.ndarray | None  # [25] float32
    camera_source: str
    info: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what was done to the input (upscaled, first frame used)


def read_camera_file(path: str | Path) -> np.ndarray:
    """25 floats from `.npy` (prepare single / EG3D inversion repos), or JSON: a list, {"camera": [...]} (prepare
    single's .json) or EG3D's dataset.json {"labels": [[name, [...]]]} with one entry."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"camera file {path} not found")
    try:
        if path.suffix == ".npy":
            values = np.load(path, allow_pickle=False)
        else:
            data = json.loads(path.read_text())
            if isinstance(data, dict) and "camera" in data:
                data = data["camera"]
            elif isinstance(data, dict) and "labels" in data and len(data["labels"]) == 1:
                data = data["labels"][0][1]
            values = np.asarray(data, dtype=np.float64)
    except (ValueError, OSError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read a camera from {path}: {exc}") from None
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if values.size != LABEL_DIM:
        raise InputError(
            f"{path}: a camera is {LABEL_DIM} floats (EG3D label: cam2world 4x4 + intrinsics 3x3), got {values.size}"
        )
    try:
        check_label(values)
    except ValueError as exc:
        raise InputError(f"{path}: {exc}") from None
    return values.astype(np.float32)


def sibling_camera(image_path: Path) -> Path | None:
    """`<stem>.npy` or `<stem>.json` beside the image (what `gan3dkit prepare single` writes)."""
    for suffix in (".npy", ".json"):
        cand = image_path.with_suffix(suffix)
        if cand.is_file():
            return cand
    return None


def fit_image(image: np.ndarray, resolution: int, name: str) -> np.ndarray:
    """Square aligned crop -> resolution x resolution (Lanczos); a non-square image is an error."""
    h, w = image.shape[:2]
    if h != w:
        raise InputError(f"{name}: an aligned crop must be square, got {w}x{h} (give an uncropped photo without "
                         "--camera to crop it, or run `gan3dkit prepare single`)")
    if h == resolution:
        return image
    return np.asarray(Image.fromarray(image).resize((resolution, resolution), Image.Resampling.LANCZOS))


def align_photo(
    image: np.ndarray, name: str, resolution: int, backend: str = "auto"
) -> tuple[np.ndarray, np.ndarray, dict]:
    """The `prepare single` chain: detect, EG3D crop, PnP head pose. Raises InputError (no face / stack missing)."""
    from ..prepare.faces.backends import BackendError, load_backend
    from ..prepare.faces.dataset import make_job
    from ..prepare.faces.pipeline import SkipInput, align_face
    from ..prepare.faces.pose import mean_shape

    try:
        job, settings = make_job(resolution, backend, "auto", 4.0)
        aligned = align_face(image, job, load_backend(job.backend, **job.backend_options), mean_shape(job.pose_shape))
    except BackendError as exc:
        raise InputError(f"{name}: cropping an uncropped photo needs the face stack (pip install -e \".[faces]\"): "
                         f"{exc}; or pass an aligned crop with --camera") from None
    except SkipInput as exc:
        raise InputError(f"{name}: {exc}; pass an aligned crop with --camera to skip face alignment") from None
    info = {"aligned": True, "backend": settings["backend"], "pose_shape": settings["pose_shape"], **aligned.info()}
    return aligned.image, aligned.camera.astype(np.float32), info


def load_item(path: Path, resolution: int, camera: str | Path | None = None, backend: str = "auto",
              align: str = "auto", name: str | None = None) -> InvertItem:
    """One image file (`name`: its key, default the stem). Camera: `camera` (file, or 'frontal'), else a sibling
    .npy/.json, else the face chain. The item's notes say when it was upscaled or was an animation's first frame.

    align: 'auto' (crop with the face chain only when no camera is known), 'always', 'never'.
    """
    name = name or path.stem
    try:
        image, notes = load_still_image(path, channels=3)
    except ImageError as exc:
        raise InputError(str(exc)) from None
    cam_path: Path | None
    if camera not in (None, "frontal"):
        cam_path = Path(camera)
    else:
        cam_path = None if camera == "frontal" else sibling_camera(path)
    if align == "always" or (align == "auto" and cam_path is None and camera != "frontal"):
        crop, est, info = align_photo(image, name, resolution, backend)
        label: np.ndarray | None = read_camera_file(cam_path) if cam_path is not None else est
        return InvertItem(name, fit_image(crop, resolution, name), label,
                          str(cam_path) if cam_path else "estimated (PnP head pose)", info,
                          notes + resize_notes(*cast("tuple[int, int]", crop.shape[:2]), resolution))  # fmt: skip
    label = None if cam_path is None else read_camera_file(cam_path)
    source = "frontal (generator's canonical camera)" if cam_path is None else str(cam_path)
    return InvertItem(name, fit_image(image, resolution, name), label, source, {"aligned": False},
                      notes + resize_notes(*cast("tuple[int, int]", image.shape[:2]), resolution))  # fmt: skip


def list_inputs(source: Path, out: Path | None = None) -> list[Item] | str:
    """Items of a folder (every image below it, keyed by its relative name; nothing under `out`), [the file] for a
    file, or 'lmdb' for a gan3dkit dataset directory."""
    if source.is_dir() and (source / "data.mdb").exists():
        return "lmdb"
    if source.is_dir():
        return folder_items(source, IMAGE_SUFFIXES, exclude=out)
    if not source.exists():
        raise FileNotFoundError(f"input {source} not found")
    return [Item(source.name, source)]


def lmdb_items(reader) -> list[Item]:
    """One item per sample, keyed by its `name` field (the index where names are missing or repeat)."""
    if "camera" not in reader.meta["fields"]:
        raise InputError(f"{reader.path} has no camera field; invert its images with --camera or from a folder")
    n = len(reader)
    names = [f"{i:08d}" for i in range(n)]
    if "name" in reader.meta["fields"]:
        try:
            stored = [str(reader.read(i, ["name"])["name"]) for i in range(n)]
        except Exception:  # noqa: BLE001 - a broken name record: every sample keeps its index as key
            stored = []
        if stored and len(set(stored)) == n and all(s and "/" not in s and s not in (".", "..") for s in stored):
            names = stored
    return [Item(name, None, i) for i, name in enumerate(names)]


def load_lmdb_item(reader, item: Item, resolution: int) -> InvertItem:
    """The sample `item.index` of a gan3dkit dataset, its camera from the `camera` field."""
    i = item.index
    s = reader.read(i, ["image", "camera"])
    img = s["image"] if s["image"].ndim == 3 else np.repeat(s["image"][..., None], 3, axis=2)
    return InvertItem(item.key, fit_image(img, resolution, item.key), np.asarray(s["camera"], np.float32),
                      f"{reader.path}#{i} camera field", {"index": i},
                      resize_notes(*cast("tuple[int, int]", img.shape[:2]), resolution))
