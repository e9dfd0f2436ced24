"""One photo -> EG3D-aligned face crop + camera: detect, pick the largest face, crop, head pose (worker side)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...cameras.conventions import FFHQ_FOCAL, FFHQ_RADIUS
from ..photos import Item, Outcome
from .align import CropSpec, FaceCrop, crop_box, warp_crop
from .backends import BackendError, LandmarkBackend, load_backend
from .pose import MeanShape, camera_from_head_rotation, mean_shape, solve_head_pose


class SkipInput(ValueError):
    """An input that cannot give a sample; the message is the reason in the report."""


@dataclass(frozen=True)
class FaceJob:
    """Picklable settings for face workers."""

    backend: str = "dlib"
    backend_options: dict[str, Any] = field(default_factory=dict)
    crop: CropSpec = CropSpec()
    pose_shape: str = "auto"
    max_upscale: float = 4.0
    radius: float = FFHQ_RADIUS
    focal: float = FFHQ_FOCAL


@dataclass
class AlignedFace:
    """Result for one photo. `landmarks` [N, 2] and `lm5` [5, 2] are in output-pixel coordinates."""

    image: np.ndarray  # [S, S, 3] uint8
    camera: np.ndarray  # [25] float64
    crop: FaceCrop
    lm5: np.ndarray
    landmarks: np.ndarray
    pose_error_px: float
    faces: int
    note: str | None = None

    def info(self) -> dict[str, Any]:
        return {"crop": self.crop.to_dict(), "lm5": np.round(self.lm5, 2).tolist(),
                "pose_error_px": None if np.isnan(self.pose_error_px) else round(self.pose_error_px, 3),
                "faces": self.faces}


@dataclass
class FaceWorker:
    """A worker's state: the job, its loaded landmark backend and mean shape, or the error that loading raised."""

    job: FaceJob
    backend: LandmarkBackend | None = None
    shape: MeanShape | None = None
    error: BackendError | None = None


def init_worker(job: FaceJob) -> FaceWorker:
    """Load the backend and the mean shape once per process (the `setup` of `build_dataset`; also used in-process).

    A failure (backend missing, weights not downloadable) is kept and raised by the first `process_item`, so it
    reaches the parent as a clear BackendError instead of a broken process pool.
    """
    try:
        return FaceWorker(job, load_backend(job.backend, **job.backend_options), mean_shape(job.pose_shape))
    except BackendError as exc:
        return FaceWorker(job, error=exc)
    except Exception as exc:  # keep only a picklable summary for the parent
        return FaceWorker(job, error=BackendError(f"{job.backend} backend failed to load: {type(exc).__name__}: {exc}"))


def align_face(image: np.ndarray, job: FaceJob, backend: LandmarkBackend, shape: MeanShape,
               label: list[float] | None = None) -> AlignedFace:
    """Detect faces in `image` (uint8 [H, W, 3]), keep the largest, crop it EG3D-style and estimate its camera.

    With `label` (25 floats from a user's EG3D dataset.json) that camera is used instead of the PnP estimate.
    Raises SkipInput (no face; face too small for the crop, i.e. enlarged more than `job.max_upscale` times).
    """
    faces = backend.detect(image)
    if not faces:
        raise SkipInput(f"no face found ({backend.name})")
    face = max(faces, key=lambda f: f.area)
    note = None
    if len(faces) > 1:
        x0, y0, x1, y1 = face.box
        note = (f"{len(faces)} faces found; took the largest ({x1 - x0:.0f}x{y1 - y0:.0f} px at "
                f"x={x0:.0f}, y={y0:.0f})")
    crop = crop_box(face.lm5, image.shape[1], image.shape[0], job.crop)
    if crop.upscale > job.max_upscale:
        raise SkipInput(f"face too small for a {job.crop.output_size}px crop: it would be enlarged "
                        f"{crop.upscale:.1f}x (limit --max-upscale {job.max_upscale:g})")
    out = warp_crop(image, crop)
    pts2d, pts3d = shape.correspondences(face)
    pts_crop = crop.to_crop(pts2d)
    if label is not None:
        camera, err = np.asarray(label, dtype=np.float64).reshape(-1), float("nan")
    else:
        pose = solve_head_pose(pts_crop, pts3d, job.crop.output_size, job.focal)
        camera, err = camera_from_head_rotation(pose.rotation, job.radius, job.focal), pose.error_px
    return AlignedFace(image=out, camera=camera, crop=crop, lm5=crop.to_crop(face.lm5),
                       landmarks=crop.to_crop(face.points), pose_error_px=err, faces=len(faces), note=note)


def process_item(worker: FaceWorker, item: Item) -> Outcome:
    """Worker entry point: file -> Outcome; every per-input failure becomes a skip with its reason."""
    from ...data.images import ImageError, load_image_file

    if worker.error is not None:
        raise worker.error
    assert worker.backend is not None and worker.shape is not None
    try:
        image = load_image_file(item.source, channels=3)
        result = align_face(image, worker.job, worker.backend, worker.shape, item.label)
    except (SkipInput, ImageError) as exc:
        return Outcome(item.name, skip=str(exc))
    except MemoryError:
        return Outcome(item.name, skip="out of memory (image too large)")
    except Exception as exc:  # a broken file or a backend failure on this input: report it, keep going
        return Outcome(item.name, skip=f"{type(exc).__name__}: {exc}")
    notes = [result.note] if result.note else []
    return Outcome(item.name, image=result.image, camera=result.camera, notes=notes, info=result.info())
