"""EG3D dataset interchange: import a zip/folder + dataset.json into LMDB, export LMDB to an EG3D zip/folder."""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch

from ..cameras.camera import Cameras, label_problems
from ..cameras.rotations import cam2world_to_ypr
from .format import DatasetFormatError
from .images import ImageError, decode_png, resize_square
from .reader import DatasetReader
from .writer import DatasetWriter

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".ppm", ".tif", ".tiff"}
Progress = Callable[[int, int], None]


class EG3DSource:
    """Read-only view of an EG3D dataset: an (uncompressed or not) zip or a folder, with `dataset.json` labels."""

    def __init__(self, src: str | Path) -> None:
        self.src = Path(src)
        if not self.src.exists():
            raise FileNotFoundError(f"EG3D source {self.src} not found")
        self._zip = zipfile.ZipFile(self.src) if self.src.is_file() else None
        all_names = (
            self._zip.namelist()
            if self._zip
            else [p.relative_to(self.src).as_posix() for p in self.src.rglob("*") if p.is_file()]
        )
        self.names = sorted(n for n in all_names if Path(n).suffix.lower() in IMAGE_EXTS)
        if "dataset.json" not in all_names:
            raise DatasetFormatError(
                f"{self.src} has no dataset.json: EG3D data needs camera labels "
                "({'labels': [[file name, [25 floats]], ...]})"
            )
        labels = json.loads(self.read("dataset.json")).get("labels")
        if not labels:
            raise DatasetFormatError(
                f"{self.src}/dataset.json has no labels; gan3dkit datasets need a camera per image"
            )
        self.labels: dict[str, Any] = {str(name).replace("\\", "/"): value for name, value in labels}

    def read(self, name: str) -> bytes:
        if self._zip is not None:
            return self._zip.read(name)
        return (self.src / name).read_bytes()

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()


def import_eg3d(
    src: str | Path,
    out: str | Path,
    resolution: int | None = None,
    pose_prior: dict | None = None,
    max_images: int | None = None,
    strict: bool = False,
    overwrite: bool = False,
    resume: bool = True,
    command: str = "",
    progress: Progress | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Convert an EG3D zip/folder into a gan3dkit LMDB (fields image, camera, ypr, name).

    Images are listed like EG3D's ImageFolderDataset (all image files, sorted) and matched to labels by name, so a
    missing or bad entry never shifts later labels. Unreadable images, missing labels and invalid cameras are
    skipped and reported (`strict=True` raises instead). Images must be square; they are resized (Lanczos) to
    `resolution` (default: the first image's size). ypr is derived from each camera (orbit convention).

    Returns:
        (output path, report {source, imported, skipped: [{name, reason}], resized}).
    """
    source = EG3DSource(src)
    names = source.names[:max_images] if max_images else source.names
    if not names:
        raise DatasetFormatError(f"{src} contains no images")
    if resolution is None:
        resolution = int(decode_png(source.read(names[0])).shape[0])
    writer = DatasetWriter(
        out,
        resolution=resolution,
        fields=["image", "camera", "ypr", "name"],
        pose_prior=pose_prior,
        source=f"eg3d:{Path(src).resolve()}",
        command=command,
        overwrite=overwrite,
        resume=resume,
        resume_key={"src": str(Path(src).resolve()), "max_images": max_images},
    )
    state = writer.state
    state.setdefault("cursor", 0)
    state.setdefault("skipped", [])
    state.setdefault("resized", 0)
    try:
        for i in range(state["cursor"], len(names)):
            name = names[i]
            state["cursor"] = i + 1  # before add(): a commit inside add must record the position after this input
            try:
                image, camera = _load_item(source, name, resolution, state)
            except (ImageError, DatasetFormatError) as exc:
                if strict:
                    raise DatasetFormatError(f"{name}: {exc}") from exc
                state["skipped"].append({"name": name, "reason": str(exc)})
                continue
            ypr = cam2world_to_ypr(Cameras.from_label(torch.from_numpy(camera)).cam2world)[0].numpy()
            writer.add(image, camera, ypr=ypr, name=name)
            if progress is not None:
                progress(i + 1, len(names))
        report = {
            "source": str(src),
            "imported": writer.count,
            "skipped": state["skipped"],
            "resized": state["resized"],
        }
        path = writer.finish(extra={"import_report": report})
    except BaseException:
        writer.close()
        raise
    finally:
        source.close()
    return path, report


def _load_item(source: EG3DSource, name: str, resolution: int, state: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    label = source.labels.get(name)
    if label is None:
        raise DatasetFormatError("no label in dataset.json")
    camera = np.asarray(label, dtype=np.float32).reshape(-1)
    problems = label_problems(camera)
    if problems:
        raise DatasetFormatError("invalid camera: " + "; ".join(problems))
    image = decode_png(source.read(name), channels=3)
    if image.shape[0] != image.shape[1]:
        raise ImageError(f"image is {image.shape[1]}x{image.shape[0]}, EG3D datasets are square")
    if image.shape[0] != resolution:
        image = resize_square(image, resolution)
        state["resized"] += 1
    return image, camera


def eg3d_name(index: int) -> str:
    """EG3D dataset_tool's archive name for sample `index`: '00000/img00000000.png' (1000 per folder)."""
    return f"{index // 1000:05d}/img{index:08d}.png"


def _iter_export(reader: DatasetReader) -> Iterator[tuple[str, bytes, list[float]]]:
    for i in range(len(reader)):
        png = reader.read_raw(i, "image")
        camera = reader.read(i, ["camera"])["camera"]
        yield eg3d_name(i), png, [float(x) for x in camera]


def export_eg3d(path: str | Path, out: str | Path, overwrite: bool = False, progress: Progress | None = None) -> Path:
    """Write a dataset as an EG3D uncompressed zip (if `out` ends in .zip) or folder, with dataset.json labels.

    Images are copied as stored (PNG); labels are written as float32 values printed exactly (they read back to the
    same float32). Written to `<out>.partial` and renamed at the end.
    """
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} already exists; pass --overwrite to replace it")
    reader = DatasetReader(path)
    tmp = out.with_name(out.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp) if tmp.is_dir() else tmp.unlink()
    labels: list[list[Any]] = []
    as_zip = out.suffix.lower() == ".zip"
    zf = zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) if as_zip else None
    try:
        for i, (name, png, label) in enumerate(_iter_export(reader)):
            if zf is not None:
                zf.writestr(name, png)
            else:
                (tmp / name).parent.mkdir(parents=True, exist_ok=True)
                (tmp / name).write_bytes(png)
            labels.append([name, label])
            if progress is not None:
                progress(i + 1, len(reader))
        data = json.dumps({"labels": labels}).encode()
        if zf is not None:
            zf.writestr("dataset.json", data)
            zf.close()
        else:
            (tmp / "dataset.json").write_bytes(data)
    except BaseException:
        if zf is not None:
            zf.close()
        raise
    finally:
        reader.close()
    if out.exists():
        shutil.rmtree(out) if out.is_dir() else out.unlink()
    os.replace(tmp, out)
    return out
