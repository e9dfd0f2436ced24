"""EG3D dataset interchange: import a zip/folder + dataset.json into LMDB, export LMDB to an EG3D zip/folder."""

from __future__ import annotations

import json
import os
import shutil
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..cameras.camera import Cameras, label_problems
from ..cameras.rotations import cam2world_to_ypr
from ..utils.errors import DataError, UsageError
from .format import DatasetFormatError
from .images import ImageError, decode_png, resize_square
from .reader import DatasetReader
from .writer import DatasetWriter

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".ppm", ".tif", ".tiff"}
Progress = Callable[[int, int], None]


class EG3DSource:
    """Read-only view of an EG3D dataset: an (uncompressed or not) zip or a folder, with `dataset.json` labels.

    `label_issues` lists what is odd about dataset.json without being fatal: duplicate names (the first label is
    used), labels for files that are not there, malformed entries.
    """

    def __init__(self, src: str | Path) -> None:
        self.src = Path(src)
        if not self.src.exists():
            raise FileNotFoundError(f"EG3D source {self.src} not found")
        self._zip = None
        if self.src.is_file():
            try:
                self._zip = zipfile.ZipFile(self.src)
                all_names = self._zip.namelist()
            except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
                raise DataError(f"{self.src} is not a readable zip archive ({exc}); it is corrupt, truncated or not "
                                "a zip: give the EG3D dataset zip or its unpacked folder") from None
        else:
            all_names = [p.relative_to(self.src).as_posix() for p in self.src.rglob("*") if p.is_file()]
        self.names = sorted(n for n in all_names if Path(n).suffix.lower() in IMAGE_EXTS)
        if "dataset.json" not in all_names:
            raise DatasetFormatError(
                f"{self.src} has no dataset.json: EG3D data needs camera labels "
                "({'labels': [[file name, [25 floats]], ...]})"
            )
        self.labels, self.label_issues = self._parse_labels()

    def _parse_labels(self) -> tuple[dict[str, Any], list[dict[str, str]]]:
        where = f"{self.src}/dataset.json" if self._zip is None else f"dataset.json in {self.src}"
        try:
            data = json.loads(self.read("dataset.json"))
        except json.JSONDecodeError as exc:
            raise DataError(f"{where} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
                            "fix or re-create it") from None
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error) as exc:
            raise DataError(f"cannot read {where} ({exc}); the archive is corrupt") from None
        labels = data.get("labels") if isinstance(data, dict) else None
        if not labels or not isinstance(labels, list):
            raise DatasetFormatError(f"{where} has no labels list; gan3dkit datasets need a camera per image "
                                     "({'labels': [[file name, [25 floats]], ...]})")
        out: dict[str, Any] = {}
        issues: list[dict[str, str]] = []
        for pos, entry in enumerate(labels):
            if not (isinstance(entry, (list, tuple)) and len(entry) == 2 and isinstance(entry[0], str)):
                issues.append({"name": f"dataset.json entry {pos}", "issue": "not a [file name, label] pair; ignored"})
                continue
            name = entry[0].replace("\\", "/")
            if name in out:
                issues.append({"name": name, "issue": f"duplicate label (entry {pos}); the first one is used"})
                continue
            out[name] = entry[1]
        present = set(self.names)
        issues += [{"name": n, "issue": "label for a file that is not in the dataset"} for n in out if n not in present]
        return out, issues

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
    missing or bad entry never shifts later labels. Any entry that fails (unreadable or non-square image, missing
    or malformed label, invalid camera, damaged archive member) is skipped and reported (`strict=True` raises,
    naming it). Odd labels (duplicates, labels without a file) are reported under `label_issues` (strict: raise).
    Images are resized (Lanczos) to `resolution` (default: the first readable image's size). ypr is derived from
    each camera (orbit convention). The resume position advances only after an entry is written or recorded as
    skipped, so a rerun after any failure loses nothing.

    Returns:
        (output path, report {source, imported, skipped: [{name, reason}], label_issues, resized}).
    """
    if max_images is not None and max_images < 1:
        raise UsageError(f"--max-images must be >= 1, got {max_images} (leave it out to import every image)")
    if resolution is not None and resolution < 8:
        raise UsageError(f"--resolution must be >= 8, got {resolution}")
    source = EG3DSource(src)
    try:
        names = source.names[:max_images] if max_images else source.names
        if not names:
            raise DatasetFormatError(f"{src} contains no images ({', '.join(sorted(IMAGE_EXTS))})")
        if strict and source.label_issues:
            issue = source.label_issues[0]
            raise DatasetFormatError(f"{src}: dataset.json: {issue['name']}: {issue['issue']} (--strict)")
        if resolution is None:
            resolution = _first_resolution(source, names)
        return _import(source, names, out, resolution, pose_prior, max_images, strict, overwrite, resume, command,
                       progress)
    finally:
        source.close()


def _first_resolution(source: EG3DSource, names: list[str]) -> int:
    """The size of the first image that decodes (the default output resolution)."""
    for name in names[:64]:
        try:
            return int(decode_png(source.read(name)).shape[0])
        except Exception:  # a bad first image is reported when its turn comes
            continue
    raise DataError(f"{source.src}: none of the first {min(len(names), 64)} images can be read; is the archive "
                    "damaged? (pass --resolution to import anyway)")


def _import(source: EG3DSource, names: list[str], out: str | Path, resolution: int, pose_prior: dict | None,
            max_images: int | None, strict: bool, overwrite: bool, resume: bool, command: str,
            progress: Progress | None) -> tuple[Path, dict[str, Any]]:
    src = source.src
    writer = DatasetWriter(
        out,
        resolution=resolution,
        fields=["image", "camera", "ypr", "name"],
        pose_prior=pose_prior,
        camera_source="measured",  # labels given with the data (EG3D's own were estimated, outside gan3dkit)
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
    state.setdefault("notes", [])
    try:
        for i in range(state["cursor"], len(names)):
            name = names[i]
            try:
                image, camera, resized = _load_item(source, name, resolution)
                ypr = cam2world_to_ypr(Cameras.from_label(torch.from_numpy(camera)).cam2world)[0].numpy()
                writer.add(image, camera, ypr=ypr, name=_safe_name(name))
            except Exception as exc:  # any failure of one entry is that entry's problem: skip and report it
                writer.undo_input()
                reason = str(exc) or type(exc).__name__
                if strict:
                    raise DatasetFormatError(f"{src}: {name}: {reason} (--strict)") from None
                state["skipped"].append({"name": name, "reason": reason})
            else:
                state["resized"] += bool(resized)
                if resized * 2 < resolution and resized:  # enlarged more than 2x: it will look blurry
                    state["notes"].append({"name": name, "note": f"upscaled from {resized}x{resized} to "
                                                                 f"{resolution}x{resolution}"})
            state["cursor"] = i + 1  # only now: the entry is written or recorded as skipped
            writer.input_done()
            if progress is not None:
                progress(i + 1, len(names))
        report = {
            "source": str(src),
            "imported": writer.count,
            "skipped": state["skipped"],
            "label_issues": source.label_issues,
            "resized": state["resized"],
            "notes": state["notes"],
        }
        if writer.count == 0:
            first = "; ".join(f"{s['name']}: {s['reason']}" for s in state["skipped"][:3])
            writer.discard()
            raise DataError(f"{src}: no entry could be imported ({len(state['skipped'])} skipped, e.g. {first}); "
                            "nothing was written")
        path = writer.finish(extra={"import_report": report})
    except BaseException:
        writer.close()
        if state["cursor"] == 0 and writer.count == 0:  # nothing to resume: leave no empty .partial behind
            shutil.rmtree(writer.partial, ignore_errors=True)
        raise
    return path, report


def _safe_name(name: str) -> str:
    """The name as valid UTF-8 (undecodable bytes of a file name written as \\xNN escapes)."""
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _load_item(source: EG3DSource, name: str, resolution: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(image [R, R, 3] uint8, camera [25], original size if resized else 0) of one entry; raises naming what is
    wrong."""
    label = source.labels.get(name)
    if label is None:
        raise DatasetFormatError("no label in dataset.json")
    try:
        camera = np.asarray(label, dtype=np.float32).reshape(-1)
    except (TypeError, ValueError):
        raise DatasetFormatError(f"label is not a list of 25 numbers: {str(label)[:60]}") from None
    problems = label_problems(camera)
    if problems:
        raise DatasetFormatError("invalid camera: " + "; ".join(problems))
    try:
        data = source.read(name)
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
        raise DataError(f"cannot read it from the archive ({exc})") from None
    image = decode_png(data, channels=3)
    if image.shape[0] != image.shape[1]:
        raise ImageError(f"image is {image.shape[1]}x{image.shape[0]}, EG3D datasets are square")
    if image.shape[0] != resolution:
        return resize_square(image, resolution), camera, int(image.shape[0])
    return image, camera, 0


def eg3d_name(index: int) -> str:
    """EG3D dataset_tool's archive name for sample `index`: '00000/img00000000.png' (1000 per folder)."""
    return f"{index // 1000:05d}/img{index:08d}.png"


def _iter_export(reader: DatasetReader) -> Iterator[tuple[str, bytes, list[float]]]:
    for i in range(len(reader)):
        png = reader.read_raw(i, "image")
        if png is None:
            raise DatasetFormatError(f"{reader.path}: sample {i} lacks field 'image'; run `gan3dkit data validate`")
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
    from .validate import check_dataset_cameras

    reader = DatasetReader(path)
    if len(reader) == 0:
        raise DataError(f"{path} holds 0 samples: nothing to export")
    check_dataset_cameras(np.stack([reader.read(i, ["camera"])["camera"] for i in range(len(reader))]), path)
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
