"""Image decoding/encoding at the dataset boundary: PNG bytes, arbitrary files (EXIF, CMYK, 16-bit, palette)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..utils.errors import DataError


class ImageError(DataError):
    """An image that cannot be decoded or does not match the dataset's shape."""


def _why(exc: Exception) -> str:
    """PIL's reason without the repr of an in-memory file (e.g. '<_io.BytesIO object at 0x...>')."""
    if isinstance(exc, UnidentifiedImageError):
        return "not an image format PIL can read (corrupt, truncated or not an image)"
    text = str(exc).split(" <_io.")[0] or type(exc).__name__
    return text if "truncated" not in text.lower() else "the image data is truncated"


def to_uint8_array(img: np.ndarray | Image.Image, channels: int = 3) -> np.ndarray:
    """Normalise an image to uint8 [H, W, C] (C = channels) or [H, W] for channels == 1.

    Accepts PIL images in any mode (EXIF orientation applied, CMYK/P/LA/RGBA/I;16 converted; alpha dropped) and
    numpy uint8 arrays of shape [H, W], [H, W, 1], [H, W, 3]. Float or 16-bit arrays are rejected: scale them first.
    """
    if isinstance(img, Image.Image):
        img = ImageOps.exif_transpose(img)
        if img.mode in ("I;16", "I;16B", "I;16L", "I"):
            arr = np.asarray(img, dtype=np.float64)
            peak = 65535.0 if arr.max() > 255 else 255.0
            img = Image.fromarray(np.clip(arr / peak * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
        img = img.convert("L" if channels == 1 else "RGB")
        arr = np.asarray(img)
    else:
        arr = np.asarray(img)
        if arr.dtype != np.uint8:
            raise ImageError(f"image array must be uint8, got {arr.dtype} (scale to 0..255 first)")
        if arr.ndim == 3 and arr.shape[2] == 1:
            arr = arr[:, :, 0]
        if channels == 3 and arr.ndim == 2:
            arr = np.repeat(arr[:, :, None], 3, axis=2)
        if channels == 1 and arr.ndim == 3:
            raise ImageError("got a colour array for a grayscale dataset")
    expect = 2 if channels == 1 else 3
    if arr.ndim != expect or (channels == 3 and arr.shape[2] != 3):
        raise ImageError(f"image must be [H, W{'' if channels == 1 else ', 3'}], got {arr.shape}")
    return np.ascontiguousarray(arr)


def encode_png(arr: np.ndarray, compress_level: int = 1) -> bytes:
    """uint8 [H, W] or [H, W, 3] -> PNG bytes (fast compression level by default; PNG is lossless at any level)."""
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


def decode_png(data: bytes, channels: int | None = None) -> np.ndarray:
    """PNG (or any PIL-readable) bytes -> uint8 array; raises ImageError on corrupt data."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            if channels is None:
                return np.asarray(im)
            return to_uint8_array(im, channels)
    except ImageError:
        raise
    except Exception as exc:  # PIL raises many types for corrupt data
        raise ImageError(f"cannot decode image: {_why(exc)}") from exc


def load_image_file(path: str | Path, channels: int = 3) -> np.ndarray:
    """Read an image file of any PIL-supported format into uint8 [H, W, 3] / [H, W]; clear error if unreadable."""
    try:
        with Image.open(path) as im:
            im.load()
            return to_uint8_array(im, channels)
    except ImageError:
        raise
    except Exception as exc:
        raise ImageError(f"cannot read image {path}: {_why(exc)}") from exc


def frame_count(path: str | Path) -> int:
    """Frames in an image file (APNG, animated WebP/GIF have several); 1 when it cannot be opened (its reader
    then says why)."""
    try:
        with Image.open(path) as im:
            return int(getattr(im, "n_frames", 1) or 1)
    except Exception:  # noqa: BLE001 - a broken file is reported by the reader
        return 1


def load_still_image(path: str | Path, channels: int = 3) -> tuple[np.ndarray, list[str]]:
    """`load_image_file` plus notes: an animated file (APNG, animated WebP/GIF) gives its first frame, and says so."""
    arr = load_image_file(path, channels)
    frames = frame_count(path)
    notes = [f"animated image ({frames} frames): only its first frame is used"] if frames > 1 else []
    return arr, notes


def resize_notes(height: int, width: int, resolution: int) -> list[str]:
    """Notes for an input made `resolution`² : enlarged more than 2x (it will look blurry), or not square."""
    notes = []
    if min(height, width) * 2 < resolution:
        notes.append(f"upscaled {resolution / min(height, width):.3g}x (from {width}x{height} to "
                     f"{resolution}x{resolution}); it will look blurry")
    if height != width:
        notes.append(f"not square ({width}x{height}): stretched to {resolution}x{resolution}")
    return notes


def resize_square(arr: np.ndarray, resolution: int) -> np.ndarray:
    """Resize a square uint8 image to resolution x resolution with Lanczos (no-op when already that size)."""
    if arr.shape[0] != arr.shape[1]:
        raise ImageError(f"image is not square: {arr.shape[1]}x{arr.shape[0]}")
    if arr.shape[0] == resolution:
        return arr
    return np.asarray(Image.fromarray(arr).resize((resolution, resolution), Image.Resampling.LANCZOS))
