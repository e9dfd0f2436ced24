"""`prepare ffhq` (in-the-wild photos -> EG3D-aligned LMDB with cameras) and `prepare single` (PNG + camera files)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ...cameras.conventions import FFHQ_FOCAL, FFHQ_RADIUS
from ...utils.files import atomic_write_bytes, atomic_write_json
from ..photos import (
    BuildSpec,
    Item,
    Outcome,
    Progress,
    attach_labels,
    build_dataset,
    list_images,
    load_labels,
    publish,
    run_item,
)
from .align import CropSpec
from .backends import BackendError, installed, resolve_backend
from .pipeline import FaceJob, FaceWorker, init_worker, process_item
from .pose import OPENCV_PIP, mean_shape


def make_job(resolution: int, backend: str, pose_shape: str, max_upscale: float,
             backend_options: dict[str, Any] | None = None) -> tuple[FaceJob, dict[str, Any]]:
    """Resolve 'auto' choices (without loading models) and describe them for the report."""
    name, why = resolve_backend(backend)
    shape = mean_shape(pose_shape)
    if not installed("cv2"):
        raise BackendError(f"head pose needs OpenCV's solvePnP: {OPENCV_PIP}")
    job = FaceJob(backend=name, backend_options=dict(backend_options or {}), crop=CropSpec(output_size=resolution),
                  pose_shape=shape.name, max_upscale=max_upscale)
    info = {"backend": name, "backend_choice": why, "backend_options": job.backend_options,
            "pose_shape": shape.name, "pose_shape_source": shape.source, "resolution": resolution,
            "crop": {"target_size": job.crop.target_size, "rescale_factor": job.crop.rescale_factor,
                     "center_crop": job.crop.center_crop, "output_size": resolution},
            "max_upscale": max_upscale, "radius": FFHQ_RADIUS, "focal": FFHQ_FOCAL}
    return job, info


def _process_labelled(worker: FaceWorker, item: Item) -> Outcome:
    """Worker entry when the user gave labels: an image without one is skipped rather than estimated."""
    if item.label is None:
        return Outcome(item.name, skip="no label for this image in the given dataset.json")
    return process_item(worker, item)


def build_faces(sources: Sequence[str | Path], out: str | Path, *, resolution: int = 512, backend: str = "auto",
                pose_shape: str = "auto", labels: str | Path | None = None, mirror: bool = False,
                max_upscale: float = 4.0, max_images: int | None = None, workers: int = 2, resume: bool = True,
                overwrite: bool = False, command: str = "", backend_options: dict[str, Any] | None = None,
                progress: Progress | None = None) -> tuple[Path, dict[str, Any]]:
    """In-the-wild face photos -> LMDB (image, camera, ypr, name), EG3D's FFHQ crop and a camera per face.

    Every input is listed in the report: used, or skipped with the reason (unreadable, no face, face too small);
    inputs with several faces use the largest and get a note. Skips never shift later samples: each sample is
    written with its own camera and name. With `labels` (an EG3D dataset.json) the given cameras replace PnP.
    """
    items = list_images(sources)[:max_images]
    job, info = make_job(resolution, backend, pose_shape, max_upscale, backend_options)
    if labels is not None:
        attach_labels(items, load_labels(labels))
        info["labels"] = str(Path(labels).resolve())
        info["pose_shape"] = info["pose_shape_source"] = None
    spec = BuildSpec(out=Path(out), resolution=resolution, kind="ffhq", mirror=mirror, workers=workers,
                     resume=resume, overwrite=overwrite, command=command, settings=info,
                     source="photos:" + ", ".join(str(s) for s in sources),
                     label_source="measured" if labels is not None else "estimated")
    fn = _process_labelled if labels is not None else process_item
    return build_dataset(spec, items, fn, job, init_worker, progress)


def _png_bytes(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def prepare_single(sources: Sequence[str | Path], out_dir: str | Path, *, resolution: int = 512,
                   backend: str = "auto", pose_shape: str = "auto", mirror: bool = False, max_upscale: float = 4.0,
                   overwrite: bool = False, backend_options: dict[str, Any] | None = None,
                   progress: Progress | None = None) -> dict[str, Any]:
    """Per photo, write `<stem>.png` (aligned crop), `<stem>.npy` (25 float32, the EG3D camera the inversion repos
    read) and `<stem>.json` (camera, ypr, landmarks, crop box, settings) into `out_dir`; with `mirror` also
    `<stem>_mirror.*`. Returns a report {written: [...], skipped: [{name, reason}], notes, settings}."""
    import torch

    from ...cameras.camera import Cameras
    from ...cameras.rotations import cam2world_to_ypr

    items = list_images(sources)
    job, info = make_job(resolution, backend, pose_shape, max_upscale, backend_options)
    out_dir = Path(out_dir)
    stems = [Path(item.name).with_suffix("").as_posix().replace("/", "__") for item in items]
    if not overwrite:
        clash = [out_dir / f"{s}.png" for s in stems if (out_dir / f"{s}.png").exists()]
        if clash:
            raise FileExistsError(f"{clash[0]} already exists; pass --overwrite to replace it")
    worker = init_worker(job)
    report: dict[str, Any] = {"out": str(out_dir), "settings": info, "written": [], "skipped": [], "notes": []}
    for i, (item, stem) in enumerate(zip(items, stems, strict=False)):
        outcome = run_item(process_item, worker, item)  # listing skips (.gif, broken links) are reported, not read
        report["notes"] += [{"name": item.name, "note": n} for n in outcome.notes]
        if outcome.skip is not None:
            report["skipped"].append({"name": item.name, "reason": outcome.skip})
        else:
            assert outcome.image is not None
            cam = Cameras.from_label(torch.as_tensor(np.asarray(outcome.camera, dtype=np.float32)))
            variants = [(stem, outcome.image, cam)]
            if mirror:
                variants.append((f"{stem}_mirror", np.ascontiguousarray(outcome.image[:, ::-1]), cam.mirror()))
            for vstem, image, vcam in variants:
                label = vcam.to_label()[0].numpy().astype(np.float32)  # [25]
                ypr = torch.rad2deg(cam2world_to_ypr(vcam.cam2world))[0].tolist()
                meta = {"source": str(item.source), "camera": label.tolist(), "ypr_deg": ypr,
                        "ypr_convention": "orbit_v1 (yaw: camera azimuth toward +x; pitch: camera above; roll)",
                        "label_layout": "EG3D: cam2world 4x4 row-major (OpenCV axes) + normalised intrinsics 3x3",
                        "mirrored": vstem.endswith("_mirror"), **outcome.info, "settings": info}
                buf = io.BytesIO()
                np.save(buf, label)
                publish(atomic_write_bytes(out_dir / f"{vstem}.png", _png_bytes(image)))
                publish(atomic_write_bytes(out_dir / f"{vstem}.npy", buf.getvalue()))
                publish(atomic_write_json(out_dir / f"{vstem}.json", meta))
                report["written"].append({"name": item.name, "png": str(out_dir / f"{vstem}.png"),
                                          "ypr_deg": [round(v, 2) for v in ypr]})
        if progress is not None:
            progress(i + 1, len(items))
    return report
