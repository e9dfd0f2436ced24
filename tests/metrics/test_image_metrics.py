"""Pixel metrics: SSIM vs scikit-image, MS-SSIM vs pytorch-msssim, PSNR/MSE values and properties."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gan3dkit.metrics import image as im


def _pair(seed=0, size=48, noise=0.1):
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(2, 3, size, size, generator=g)
    base = torch.nn.functional.avg_pool2d(base, 3, 1, 1)  # some spatial structure
    other = (base + noise * torch.randn(base.shape, generator=g)).clamp(0, 1)
    return base.double(), other.double()


def test_ssim_matches_scikit_image():
    metrics = pytest.importorskip("skimage.metrics")
    x, y = _pair()
    ours = im.ssim(x, y, data_range=1.0)
    for b in range(len(x)):
        ref = metrics.structural_similarity(x[b].permute(1, 2, 0).numpy(), y[b].permute(1, 2, 0).numpy(),
                                            gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                            data_range=1.0, channel_axis=-1)
        assert float(ours[b]) == pytest.approx(ref, abs=1e-7)


def test_ssim_properties():
    x, y = _pair(1)
    assert torch.allclose(im.ssim(x, x), torch.ones(2, dtype=torch.float64))
    assert torch.allclose(im.ssim(x, y), im.ssim(y, x))
    noisy = [float(im.ssim(*_pair(2, noise=s)).mean()) for s in (0.02, 0.1, 0.3)]
    assert noisy[0] > noisy[1] > noisy[2]
    with pytest.raises(ValueError):
        im.ssim(x[:, :, :8, :8], y[:, :, :8, :8])


def test_ms_ssim_matches_pytorch_msssim_at_five_scales():
    msssim = pytest.importorskip("pytorch_msssim")
    x, y = _pair(3, size=192)
    ours = im.ms_ssim(x, y, data_range=1.0)
    assert im.ms_ssim_levels(192) == 5
    ref = msssim.ms_ssim(x.float(), y.float(), data_range=1.0, size_average=False)
    torch.testing.assert_close(ours.float(), ref, atol=2e-5, rtol=0)
    ref_ssim = msssim.ssim(x.float(), y.float(), data_range=1.0, size_average=False)
    torch.testing.assert_close(im.ssim(x, y).float(), ref_ssim, atol=2e-5, rtol=0)


def test_ms_ssim_small_images_use_fewer_scales():
    x, y = _pair(4, size=64)
    assert im.ms_ssim_levels(64) == 3 and im.ms_ssim_levels(161) == 5 and im.ms_ssim_levels(20) == 1
    assert torch.allclose(im.ms_ssim(x, x), torch.ones(2, dtype=torch.float64))
    v = im.ms_ssim(x, y)
    assert ((v > 0) & (v < 1)).all()


def test_psnr_and_mse_values():
    x = torch.zeros(1, 3, 8, 8)
    y = x + 0.1
    assert float(im.mse(x, y)) == pytest.approx(0.01)
    assert float(im.psnr(x, y)) == pytest.approx(20.0)
    assert float(im.psnr(x * 255, y * 255, data_range=255.0)) == pytest.approx(20.0)
    metrics = pytest.importorskip("skimage.metrics")
    a, b = _pair(5)
    ref = metrics.peak_signal_noise_ratio(a[0].numpy(), b[0].numpy(), data_range=1.0)
    assert float(im.psnr(a, b)[0]) == pytest.approx(ref, rel=1e-9)
    assert im.finite_mean(im.psnr(a, a)) != im.finite_mean(im.psnr(a, a))  # all inf -> NaN


def test_to_unit_ranges():
    assert torch.equal(im.to_unit(torch.tensor([0, 255], dtype=torch.uint8)), torch.tensor([0.0, 1.0]))
    assert torch.allclose(im.to_unit(torch.tensor([-1.0, 0.0, 1.0, 2.0])), torch.tensor([0.0, 0.5, 1.0, 1.0]))
    assert np.isfinite(float(im.mse(*_pair()).mean()))
