"""The shipped 68-point mean face (MediaPipe canonical model): data, provenance, symmetry, PnP, no insightface."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from gan3dkit.prepare.faces import pose
from gan3dkit.prepare.faces.backends import MEDIAPIPE_TO_68
from gan3dkit.prepare.faces.pose import MEAN_FACE_68, mean_shape

ROOT = Path(__file__).resolve().parents[2]
#: iBUG-68 index of each point's mirror partner (jaw 0<->16, brows, nose wings, eyes, lips; midline points map to
#: themselves).
MIRROR = (list(range(16, -1, -1)) + list(range(26, 16, -1)) + [27, 28, 29, 30] + [35, 34, 33, 32, 31]
          + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]
          + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55] + [64, 63, 62, 61, 60, 67, 66, 65])


def test_shipped_mean_face_loads_with_its_provenance():
    doc = json.loads(MEAN_FACE_68.read_text())
    pts = np.asarray(doc["points"], dtype=np.float64)
    assert pts.shape == (68, 3) and np.isfinite(pts).all()
    assert doc["source"]["licence"].startswith("Apache-2.0") and len(doc["source"]["sha256"]) == 64
    assert (MEAN_FACE_68.parent / "LICENSE-mediapipe.txt").read_text().lstrip().startswith("Apache License")
    assert doc["mapping_ibug68_to_mediapipe"] == [list(MEDIAPIPE_TO_68[i]) for i in range(68)]
    shape = mean_shape("auto")
    assert shape.name == "mediapipe68" and shape.point_ids == tuple(range(68)) and "Apache-2.0" in shape.source
    np.testing.assert_array_equal(shape.points, pts)


def test_shipped_mean_face_is_in_the_wheel():
    """pyproject's package-data ships the JSON and its licence (checked as text: tomllib needs Python 3.11)."""
    lines = [line for line in (ROOT / "pyproject.toml").read_text().splitlines()
             if line.startswith('"gan3dkit.prepare.faces" = ')]
    assert len(lines) == 1 and '"data/*.json"' in lines[0] and '"data/*.txt"' in lines[0], lines


def test_mean_face_is_mirror_symmetric_and_face_shaped():
    assert sorted(MIRROR) == list(range(68)) and all(MIRROR[MIRROR[i]] == i for i in range(68))
    pts = mean_shape("mediapipe68").points
    mirrored = pts[MIRROR] * np.array([-1.0, 1.0, 1.0])
    eyes = np.linalg.norm(pts[36] - pts[45])
    assert np.abs(mirrored - pts).max() < 1e-6 * eyes  # the canonical mesh is exactly symmetric
    assert pts[36, 0] < 0 < pts[45, 0]  # x to the image right: the subject's right eye is on the image left
    assert pts[8, 1] > pts[57, 1] > pts[30, 1] > pts[27, 1] > pts[19, 1]  # y down: brow, nose root, tip, lip, chin
    assert pts[30, 2] < pts[39, 2] < pts[0, 2]  # z into the head: nose tip nearest, then eye corner, then jaw end
    # proportions of the BFM mean (lm3d_std): nose-tip depth in front of the eye centres ~0.65-0.68 eye distances
    centres = (pts[[36, 39]].mean(0) + pts[[42, 45]].mean(0)) / 2
    ratio = (centres[2] - pts[30, 2]) / np.linalg.norm(pts[[36, 39]].mean(0) - pts[[42, 45]].mean(0))
    assert 0.6 < ratio < 0.72, ratio


def test_mapping_table_is_mirror_symmetric():
    """Mirror partners use mirrored mesh vertices: checked through the shipped points (a vertex and its mirror image
    have opposite x), so a table edit that breaks the symmetry fails here and in the regenerated JSON."""
    pts = mean_shape("mediapipe68").points
    for i in range(68):
        assert len(MEDIAPIPE_TO_68[i]) == len(MEDIAPIPE_TO_68[MIRROR[i]])
        assert abs(pts[i, 0] + pts[MIRROR[i], 0]) < 1e-6 and abs(pts[i, 1] - pts[MIRROR[i], 1]) < 1e-6


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pnp_recovers_a_random_rotation_from_the_shipped_shape(seed):
    pytest.importorskip("cv2")
    rng = np.random.default_rng(seed)
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    angle = math.radians(rng.uniform(10.0, 35.0))
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    rot = np.eye(3) + math.sin(angle) * k + (1 - math.cos(angle)) * k @ k  # Rodrigues
    pts3d = mean_shape("mediapipe68").points
    cam = pts3d @ rot.T + np.array([0.5, -0.3, 60.0])  # centimetres: a face 60 cm away
    f = 4.2647 * 512
    pts2d = cam[:, :2] / cam[:, 2:] * f + 256 - 0.5
    head = pose.solve_head_pose(pts2d, pts3d, 512)
    assert head.error_px < 1e-3
    err = math.degrees(math.acos(np.clip((np.trace(head.rotation.T @ rot) - 1) / 2, -1, 1)))
    assert err < 0.01, err


def test_default_needs_no_insightface(monkeypatch):
    monkeypatch.setattr(pose, "_package_dir", lambda module: None)
    mean_shape.cache_clear()
    try:
        assert mean_shape("auto").name == "mediapipe68"
        with pytest.raises(FileNotFoundError, match="insightface==2.1.*--pose-shape auto"):
            mean_shape("meanshape68")
    finally:
        mean_shape.cache_clear()
