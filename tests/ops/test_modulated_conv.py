# SPDX-License-Identifier: Apache-2.0
"""Tests for conv2d_resample and modulated_conv2d: definitions, fused/non-fused parity, demodulation, gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gan3dkit.ops import conv2d_resample, modulated_conv2d, setup_filter

from .reference_impls import conv2d_resample_np


def _rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("up,down", [(1, 1), (2, 1), (1, 2)])
def test_conv2d_resample_matches_definition(up, down):
    x, w = _rand(2, 3, 6, 6, seed=1), _rand(4, 3, 3, 3, seed=2)
    f = setup_filter([1, 3, 3, 1]).double()
    out = conv2d_resample(x, w, f, up=up, down=down, padding=1)
    expected = conv2d_resample_np(x.numpy(), w.numpy(), f.numpy(), up, down, 1)
    assert out.shape == (2, 4, 6 * up // down, 6 * up // down) == expected.shape
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-10, atol=1e-10)


def test_conv2d_resample_plain_and_flip_weight_and_groups():
    x, w = _rand(2, 4, 5, 7, seed=3), _rand(6, 2, 3, 3, seed=4)
    torch.testing.assert_close(conv2d_resample(x, w, padding=1, groups=2), F.conv2d(x, w, padding=1, groups=2))
    torch.testing.assert_close(
        conv2d_resample(x, w, padding=1, groups=2, flip_weight=False),
        F.conv2d(x, w.flip([2, 3]), padding=1, groups=2),
    )
    asym = conv2d_resample(x, w, padding=[1, 0, 2, 1], groups=2)
    torch.testing.assert_close(asym, F.conv2d(F.pad(x, [1, 0, 2, 1]), w, groups=2))
    with pytest.raises(ValueError, match="channels"):
        conv2d_resample(x, w, groups=1)


def _explicit_modconv(x, weight, styles, demodulate):
    """One F.conv2d per sample with explicitly modulated (and demodulated) weights; up = down = 1, padding 1."""
    outs = []
    for n in range(x.shape[0]):
        wn = weight * styles[n][None, :, None, None]
        if demodulate:
            wn = wn / torch.sqrt(wn.square().sum(dim=[1, 2, 3], keepdim=True) + 1e-8)
        outs.append(F.conv2d(x[n : n + 1], wn, padding=1))
    return torch.cat(outs)


@pytest.mark.parametrize("demodulate", [True, False])
@pytest.mark.parametrize("fused", [True, False])
def test_modulated_matches_explicit_per_sample_conv(demodulate, fused):
    x, weight, styles = _rand(3, 4, 6, 6, seed=5), _rand(5, 4, 3, 3, seed=6), _rand(3, 4, seed=7) + 1.5
    out = modulated_conv2d(x, weight, styles, padding=1, demodulate=demodulate, fused_modconv=fused)
    torch.testing.assert_close(out, _explicit_modconv(x, weight, styles, demodulate))


@pytest.mark.parametrize(
    "up,down,demodulate,with_noise", [(1, 1, True, True), (2, 1, True, False), (1, 2, False, True), (2, 1, False, True)]
)
def test_fused_equals_non_fused(up, down, demodulate, with_noise):
    x, weight, styles = _rand(2, 4, 8, 8, seed=8), _rand(3, 4, 3, 3, seed=9), _rand(2, 4, seed=10)
    f = setup_filter([1, 3, 3, 1]).double()
    size = 8 * up // down
    noise = _rand(2, 1, size, size, seed=11) if with_noise else None
    kwargs = dict(noise=noise, up=up, down=down, padding=1, resample_filter=f, demodulate=demodulate)
    fused = modulated_conv2d(x, weight, styles, fused_modconv=True, **kwargs)
    unfused = modulated_conv2d(x, weight, styles, fused_modconv=False, **kwargs)
    assert fused.shape == (2, 3, size, size)
    torch.testing.assert_close(fused, unfused)


def test_up_down_shapes_with_flip_weight_false():
    x, weight, styles = torch.randn(2, 4, 8, 8), torch.randn(6, 4, 3, 3), torch.randn(2, 4)
    f = setup_filter([1, 3, 3, 1])
    up = modulated_conv2d(x, weight, styles, up=2, padding=1, resample_filter=f, flip_weight=False)
    down = modulated_conv2d(x, weight, styles, down=2, padding=1, resample_filter=f)
    assert up.shape == (2, 6, 16, 16) and down.shape == (2, 6, 4, 4)


def test_demodulated_output_has_unit_variance():
    gen = torch.Generator().manual_seed(12)
    x = torch.randn(8, 32, 16, 16, generator=gen)
    weight = torch.randn(32, 32, 3, 3, generator=gen)
    styles = torch.rand(8, 32, generator=gen) * 3 + 0.1
    out = modulated_conv2d(x, weight, styles, padding=0, demodulate=True)
    assert 0.9 < out.var().item() < 1.1
    per_channel = out.transpose(0, 1).reshape(32, -1).var(dim=1)
    assert per_channel.min() > 0.7 and per_channel.max() < 1.3
    raw = modulated_conv2d(x, weight, styles, padding=0, demodulate=False)
    assert raw.var().item() > 10  # without demodulation the variance is far from 1


def test_shape_validation():
    with pytest.raises(ValueError, match="disagree"):
        modulated_conv2d(torch.zeros(2, 4, 5, 5), torch.zeros(3, 4, 3, 3), torch.zeros(2, 5))


@pytest.mark.parametrize("fused", [True, False])
def test_gradgradcheck(fused):
    x, weight, styles = _rand(2, 2, 3, 3, seed=13), _rand(2, 2, 3, 3, seed=14), _rand(2, 2, seed=15) + 1.0
    f = setup_filter([1, 3, 3, 1]).double()
    inputs = tuple(t.requires_grad_() for t in (x, weight, styles))

    def fn(x, weight, styles):
        return modulated_conv2d(x, weight, styles, up=2, padding=1, resample_filter=f, fused_modconv=fused)

    assert torch.autograd.gradcheck(fn, inputs)
    assert torch.autograd.gradgradcheck(fn, inputs, fast_mode=True)


def test_conv2d_resample_gradgradcheck_down():
    x, w = _rand(1, 2, 4, 4, seed=16).requires_grad_(), _rand(2, 2, 3, 3, seed=17).requires_grad_()
    f = setup_filter([1, 3, 3, 1]).double()

    def fn(x, w):
        return conv2d_resample(x, w, f, down=2, padding=1)

    assert torch.autograd.gradgradcheck(fn, (x, w))
