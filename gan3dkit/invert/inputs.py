"""Inversion inputs: aligned crop + camera (JSON / .npy / LMDB field), uncropped photo -> face crop + PnP pose, folders."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ..cameras.camera import check_label
from ..data.images import ImageError, load_image_file

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
    if values.size != 25:
        raise InputError(f"{path}: a camera is 25 floats (EG3D label: cam2world 4x4 + intrinsics 3x3), got {values.size}")
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
    return np.asarray(Image.fromarray(image).resize((resolution, resolution), Image.LANCZOS))


def align_photo(image: np.ndarray, name: str, resolution: int, backend: str = "auto") -> tuple[np.ndarray, np.ndarray, dict]:
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
              align: str = "auto") -> InvertItem:
    """One image file. Camera: `camera` (file, or 'frontal'), else a sibling .npy/.json, else the face chain.

    align: 'auto' (crop with the face chain only when no camera is known), 'always', 'never'.
    """
    name = path.stem
    try:
        image = load_image_file(path, channels=3)
    except ImageError as exc:
        raise InputError(str(exc)) from None
    cam_path = Path(camera) if camera not in (None, "frontal") else (None if camera == "frontal" else sibling_camera(path))
    if align == "always" or (align == "auto" and cam_path is None and camera != "frontal"):
        crop, est, info = align_photo(image, name, resolution, backend)
        label = read_camera_file(cam_path) if cam_path is not None else est
        return InvertItem(name, fit_image(crop, resolution, name), label,
                          str(cam_path) if cam_path else "estimated (PnP head pose)", info)
    label = None if cam_path is None else read_camera_file(cam_path)
    source = "frontal (generator's canonical camera)" if cam_path is None else str(cam_path)
    return InvertItem(name, fit_image(image, resolution, name), label, source, {"aligned": False})


def list_inputs(source: Path) -> list[Path] | str:
    """Image files of a folder (sorted), [file] for a file, or 'lmdb' for a gan3dkit dataset directory."""
    if source.is_dir() and (source / "data.mdb").exists():
        return "lmdb"
    if source.is_dir():
        files = sorted(p for p in source.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not files:
            raise InputError(f"{source} holds no images ({', '.join(IMAGE_SUFFIXES)})")
        return files
    if not source.exists():
        raise FileNotFoundError(f"input {source} not found")
    return [source]


def iter_lmdb(path: Path, resolution: int, indices: list[int] | None = None) -> Iterator[tuple[str, InvertItem | Exception]]:
    """(name, item or the error) for every sample of a gan3dkit LMDB dataset; cameras from its `camera` field."""
    from ..data.reader import DatasetReader

    reader = DatasetReader(path)
    if "camera" not in reader.meta["fields"]:
        raise InputError(f"{path} has no camera field; invert its images with --camera or from a folder")
    has_name = "name" in reader.meta["fields"]
    for i in indices if indices is not None else range(len(reader)):
        fields = ["image", "camera"] + (["name"] if has_name else [])
        try:
            s = reader.read(i, fields)
            name = str(s.get("name") or f"{i:08d}")
            img = s["image"] if s["image"].ndim == 3 else np.repeat(s["image"][..., None], 3, axis=2)
            yield name, InvertItem(name, fit_image(img, resolution, name), np.asarray(s["camera"], np.float32),
                                   f"{path}#{i} camera field", {"index": i})
        except Exception as exc:  # noqa: BLE001 (one broken sample is reported, the rest continue)
            yield f"{i:08d}", exc
