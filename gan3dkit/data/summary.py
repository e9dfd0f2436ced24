"""Dataset summaries for people and pipelines: camera statistics and a contact sheet (images, masks, depth)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..cameras.camera import LABEL_DIM, Cameras
from ..cameras.rotations import cam2world_to_ypr
from ..utils.errors import DataError
from ..utils.visual import depth_to_rgb, make_grid
from .reader import DatasetReader
from .validate import camera_label_problems


def resolution_warnings(reader: DatasetReader, indices: np.ndarray) -> list[str]:
    """A warning when stored images (read from their PNG headers only) differ from the recorded resolution."""
    import io

    from PIL import Image

    res, bad = int(reader.meta["resolution"]), {}
    for i in indices.tolist():
        raw = reader.read_raw(int(i), "image")
        try:
            with Image.open(io.BytesIO(raw or b"")) as im:
                size = im.size
        except Exception:  # noqa: BLE001, S112 - an undecodable image is `data validate`'s finding
            continue
        if size != (res, res):
            bad[int(i)] = size
    if not bad:
        return []
    i, (w, h) = next(iter(bad.items()))
    text = (f"{reader.path}: the meta records resolution {res} but {len(bad)} of {indices.size} checked images "
            f"differ (sample {i} is {w}x{h}); training and evaluation will refuse it; run `gan3dkit data validate "
            f"{reader.path}`")
    return [text]


def summarize(path: str | Path, max_samples: int = 10000) -> dict[str, Any]:
    """Meta plus camera statistics over up to `max_samples` evenly spaced samples (angles in degrees)."""
    reader = DatasetReader(path)
    meta = reader.meta
    n = len(reader)
    idx = np.unique(np.linspace(0, n - 1, min(n, max_samples)).round().astype(int)) if n else np.zeros(0, int)
    out: dict[str, Any] = {"path": str(path), "meta": meta, "stats": {"sampled": int(idx.size)}, "warnings": []}
    if n == 0:
        out["warnings"].append(f"{path} holds 0 samples")
    out["warnings"] += resolution_warnings(reader, idx[:: max(1, idx.size // 8)])
    labels_np = (np.stack([reader.read(int(i), ["camera"])["camera"] for i in idx]) if idx.size
                 else np.zeros((0, LABEL_DIM)))
    bad = camera_label_problems(labels_np)
    if bad:
        first = ", ".join(f"sample {int(idx[i])} ({p[0]})" for i, p in list(bad.items())[:3])
        out["warnings"].append(f"{len(bad)} of {idx.size} sampled cameras are invalid, e.g. {first}; statistics "
                               f"use the valid ones; run `gan3dkit data validate {path}`")
        out["stats"]["invalid_cameras"] = sorted(int(idx[i]) for i in bad)
        keep = np.array([i not in bad for i in range(idx.size)], dtype=bool)
        idx, labels_np = idx[keep], labels_np[keep]
    if idx.size:
        labels = torch.from_numpy(np.ascontiguousarray(labels_np, dtype=np.float32))
        cams = Cameras.from_label(labels)
        ypr = torch.rad2deg(cam2world_to_ypr(cams.cam2world)).numpy()
        radius = cams.radius.numpy()
        focal = cams.focal[:, 0].numpy()
        stats = out["stats"]
        for name, values in (
            ("yaw_deg", ypr[:, 0]),
            ("pitch_deg", ypr[:, 1]),
            ("roll_deg", ypr[:, 2]),
            ("radius", radius),
            ("focal", focal),
        ):
            stats[name] = {
                "mean": float(values.mean()),
                "std": float(values.std()),
                "min": float(values.min()),
                "max": float(values.max()),
            }
    reader.close()
    return out


def contact_sheet(path: str | Path, num: int = 16, ncols: int | None = None) -> np.ndarray:
    """uint8 grid of the first `num` samples: an image row, then mask and depth rows when the dataset has them."""
    reader = DatasetReader(path)
    meta = reader.meta
    num = min(num, len(reader))
    if num == 0:
        raise DataError(f"{path} holds 0 samples: no contact sheet to draw")
    ncols = ncols or min(num, 8)
    fields = [f for f in ("image", "mask", "depth") if f in meta["fields"]]
    rows: dict[str, list[np.ndarray]] = {f: [] for f in fields}
    for i in range(num):
        sample = reader.read(i, fields)
        rows["image"].append(sample["image"])
        if "mask" in sample:
            rows["mask"].append(sample["mask"])
        if "depth" in sample:
            valid = sample["mask"] > 127 if "mask" in sample else None
            rows["depth"].append(depth_to_rgb(sample["depth"], valid))
    reader.close()
    tiles: list[np.ndarray] = []
    for start in range(0, num, ncols):
        for f in fields:  # interleave so each block of columns shows image / mask / depth of the same samples
            chunk = rows[f][start : start + ncols]
            blank = np.full_like(rows["image"][0], 255)
            tiles += [im if im.ndim == 3 else np.repeat(im[:, :, None], 3, 2) for im in chunk]
            tiles += [blank] * (ncols - len(chunk))
    return make_grid(tiles, ncols)
