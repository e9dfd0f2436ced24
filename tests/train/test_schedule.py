"""EG3D's fades and lazy-regularisation arithmetic as pure functions of images seen."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gan3dkit.methods.schedule import (
    blur_sigma,
    ema_beta,
    gaussian_blur_kernel,
    gpc_swap_prob,
    lazy_reg_adjust,
    neural_rendering_resolution,
)


def test_nrr_fade_64_to_128():
    assert neural_rendering_resolution(0, 64, 128, 1000) == 64
    assert neural_rendering_resolution(500_000, 64, 128, 1000) == 96
    assert neural_rendering_resolution(10_000_000, 64, 128, 1000) == 128
    assert neural_rendering_resolution(123_456, 64, None, 1000) == 64
    # monotone and rint-rounded on the way
    vals = [neural_rendering_resolution(n, 64, 128, 1000) for n in range(0, 1_000_001, 7_813)]
    assert vals == sorted(vals) and vals[1] == int(np.rint(64 + 64 * 7_813 / 1e6))


def test_blur_gpc_ema():
    assert blur_sigma(0, 10, 200) == 10 and blur_sigma(100_000, 10, 200) == 5 and blur_sigma(300_000, 10, 200) == 0
    assert blur_sigma(0, 10, 0) == 0
    assert gpc_swap_prob(0, True, 0.5, 1000) == 1.0
    assert gpc_swap_prob(500_000, True, 0.5, 1000) == pytest.approx(0.75)
    assert gpc_swap_prob(5_000_000, True, 0.8, 1000) == pytest.approx(0.8)
    assert gpc_swap_prob(0, False, 0.5, 1000) is None
    # EG3D ema: half-life ema_kimg, ramped up by 0.05 * images seen
    assert ema_beta(10_000_000, 32, 10, 0.05) == pytest.approx(0.5 ** (32 / 10_000))
    assert ema_beta(1000, 32, 10, 0.05) == pytest.approx(0.5 ** (32 / 50))
    assert ema_beta(1000, 32, 10, None) == pytest.approx(0.5 ** (32 / 10_000))


def test_lazy_regularisation_adjustment():
    lr, betas = lazy_reg_adjust(0.002, (0.0, 0.99), 16)
    assert lr == pytest.approx(0.002 * 16 / 17) and betas[1] == pytest.approx(0.99 ** (16 / 17)) and betas[0] == 0
    assert lazy_reg_adjust(0.002, (0.0, 0.99), None) == (0.002, (0.0, 0.99))


def test_blur_kernel():
    f = gaussian_blur_kernel(2.0)
    assert len(f) == 2 * math.floor(6.0) + 1 and f.sum() == pytest.approx(1.0) and np.argmax(f) == len(f) // 2
    assert gaussian_blur_kernel(0.2) is None
