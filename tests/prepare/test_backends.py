"""Backend choice and failures: auto selection, face-alignment offline, missing packages, light CLI imports."""

from __future__ import annotations

import importlib.machinery
import subprocess
import sys
import types
import urllib.error

import numpy as np
import pytest

from gan3dkit.prepare.faces import backends
from gan3dkit.prepare.faces.backends import BackendError, resolve_backend
from gan3dkit.prepare.faces.pose import mean_shape


def fake_face_alignment(monkeypatch, error: Exception | None = None) -> None:
    """Install a stand-in `face_alignment` module whose FaceAlignment() fails like an offline download."""
    mod = types.ModuleType("face_alignment")
    mod.__spec__ = importlib.machinery.ModuleSpec("face_alignment", None)
    mod.LandmarksType = types.SimpleNamespace(TWO_D="2D")

    def FaceAlignment(*args, **kwargs):
        raise error or urllib.error.URLError("[Errno -2] Name or service not known")

    mod.FaceAlignment = FaceAlignment
    monkeypatch.setitem(sys.modules, "face_alignment", mod)


def test_face_alignment_offline_says_use_dlib(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    fake_face_alignment(monkeypatch)
    with pytest.raises(BackendError, match=r"could not download its weights.*--backend dlib"):
        backends.FaceAlignmentBackend()


def test_auto_prefers_cached_face_alignment_else_dlib(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    fake_face_alignment(monkeypatch)
    monkeypatch.setattr(backends, "installed", lambda m: m in ("face_alignment", "dlib", "face_recognition_models"))
    name, why = resolve_backend("auto")
    assert name == "dlib" and "not cached" in why
    ckpt = tmp_path / "hub" / "checkpoints"
    ckpt.mkdir(parents=True)
    (ckpt / "2DFAN4-cd938726ad.zip").write_bytes(b"x")
    (ckpt / "s3fd-619a316812.pth").write_bytes(b"x")
    assert resolve_backend("auto")[0] == "face-alignment"


def test_auto_falls_back_to_mediapipe_then_fails_clearly(monkeypatch):
    monkeypatch.setattr(backends, "installed", lambda m: m == "mediapipe")
    assert resolve_backend("auto")[0] == "mediapipe"
    monkeypatch.setattr(backends, "installed", lambda m: False)
    with pytest.raises(BackendError, match="dlib-bin"):
        resolve_backend("auto")


def test_missing_or_unknown_backend(monkeypatch):
    with pytest.raises(ValueError, match="unknown landmark backend"):
        resolve_backend("opencv")
    monkeypatch.setattr(backends, "installed", lambda m: False)
    with pytest.raises(BackendError, match="pip install"):
        resolve_backend("mediapipe")
    with pytest.raises(BackendError, match="--backend dlib"):
        resolve_backend("face-alignment")


def test_dlib_drops_weak_false_positive(dlib_backend, astronaut):
    """HOG upsampled once also fires on the astronaut's mission patch (score ~0.1); min_score removes it."""
    faces = dlib_backend.detect(astronaut)
    assert len(faces) == 1
    x0, y0, x1, _ = faces[0].box
    assert 150 < x0 < 200 and 50 < y0 < 100 and 70 < x1 - x0 < 110
    loose = backends.DlibBackend(min_score=0.0)
    assert len(loose.detect(astronaut)) == 2


def test_mean_shapes():
    bfm5 = mean_shape("bfm5")
    assert bfm5.points.shape == (5, 3) and bfm5.point_ids is None
    assert bfm5.points[2, 2] < bfm5.points[0, 2]  # nose tip nearer the camera (-z) than the eyes in the model frame
    with pytest.raises(ValueError):
        mean_shape("nope")
    for name in ("auto", "meanshape68"):
        try:
            shape = mean_shape(name)
        except FileNotFoundError:  # meanshape68 needs the optional insightface data
            continue
        assert shape.points.shape == (68, 3) and shape.point_ids == tuple(range(68))
        assert shape.points[30, 2] < shape.points[0, 2]  # nose tip in front of the jaw's end
        assert shape.points[8, 1] > shape.points[30, 1]  # chin below the nose (y down)
    assert mean_shape("auto").name == "mediapipe68"


def test_cli_module_imports_no_heavy_packages():
    code = ("import sys, gan3dkit.cli.prepare_photos; "
            "print(','.join(m for m in ('torch', 'cv2', 'dlib', 'mediapipe', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def test_broken_input_in_worker_is_a_skip_not_a_crash(dlib_backend, tmp_path):
    from gan3dkit.prepare.faces.pipeline import FaceJob, init_worker, process_item
    from gan3dkit.prepare.photos import Item

    worker = init_worker(FaceJob())
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8\xff garbage")
    out = process_item(worker, Item("bad.jpg", str(tmp_path / "bad.jpg")))
    assert out.image is None and "cannot read image" in out.skip
    np.testing.assert_equal(out.camera, None)
