# SPDX-License-Identifier: Apache-2.0
"""Tests for upfirdn2d, setup_filter and the filter2d/upsample2d/downsample2d wrappers."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from gan3dkit.ops import downsample2d, filter2d, setup_filter, upfirdn2d, upsample2d

from .reference_impls import upfirdn2d_np

ASYM_2D = [[1.0, 2.0, 0.5], [0.0, 3.0, 1.0]]  # non-symmetric, so flipping matters


@pytest.mark.parametrize(
    "up,down,pads,flip_filter,gain",
    [
        (1, 1, (1, 1, 0, 1), False, 1.0),
        (2, 1, (2, 1, 1, 2), False, 4.0),
        (1, 2, (1, 0, 1, 1), True, 1.0),
        (3, 2, (0, 2, 3, 1), True, 2.5),
        (2, 2, (1, 1, 1, 1), False, 1.0),
    ],
)
def test_matches_numpy_scipy_reference(up, down, pads, flip_filter, gain):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 5, 6, generator=gen, dtype=torch.float64)
    f = torch.tensor(ASYM_2D, dtype=torch.float64)
    out = upfirdn2d(x, f, up=up, down=down, padding=list(pads), flip_filter=flip_filter, gain=gain)
    expected = upfirdn2d_np(x.numpy(), f.numpy() * gain, up=up, down=down, pads=pads, flip_filter=flip_filter)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-10, atol=1e-12)


def test_separable_equals_outer_product_filter():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(1, 2, 7, 9, generator=gen, dtype=torch.float64)
    taps = [1.0, 3.0, 2.0, 1.0]
    f_sep = setup_filter(taps, separable=True).double()
    f_2d = setup_filter(taps, separable=False).double()
    assert f_sep.ndim == 1 and f_2d.ndim == 2
    for up, down in itertools.product([1, 2], [1, 2]):
        a = upfirdn2d(x, f_sep, up=up, down=down, padding=[2, 1, 1, 2], gain=3.0)
        b = upfirdn2d(x, f_2d, up=up, down=down, padding=[2, 1, 1, 2], gain=3.0)
        torch.testing.assert_close(a, b)


def test_negative_padding_crops():
    x = torch.arange(30.0).reshape(1, 1, 5, 6)
    out = upfirdn2d(x, None, padding=[-1, -2, 0, -1])
    assert torch.equal(out, x[:, :, 0:4, 1:4])
    out = upfirdn2d(x, None, down=2)
    assert torch.equal(out, x[:, :, ::2, ::2])


def test_setup_filter():
    f = setup_filter([1, 3, 3, 1])
    assert f.shape == (4, 4) and f.dtype == torch.float32
    torch.testing.assert_close(f.sum(), torch.tensor(1.0))
    assert setup_filter([1] * 8).ndim == 1  # 8+ taps default to separable
    torch.testing.assert_close(setup_filter([1] * 8).sum(), torch.tensor(1.0))
    torch.testing.assert_close(setup_filter([1, 2], normalize=False, gain=4).sum(), torch.tensor(36.0))
    torch.testing.assert_close(setup_filter([1, 2], normalize=False, separable=True, gain=4), torch.tensor([2.0, 4.0]))
    asym = setup_filter(ASYM_2D, normalize=False, flip_filter=True)
    assert torch.equal(asym, torch.tensor(ASYM_2D).flip([0, 1]))
    assert torch.equal(setup_filter(None), torch.ones(1, 1))


@pytest.mark.parametrize("taps", [[1, 3, 3, 1], [1, 2, 1], [1] * 8])
def test_constant_image_stays_constant_in_interior(taps):
    f = setup_filter(taps).double()
    x = torch.full((1, 2, 32, 32), 0.75, dtype=torch.float64)
    for out, scale in [(filter2d(x, f), 1), (upsample2d(x, f), 2), (downsample2d(x, f), 0.5)]:
        assert out.shape == (1, 2, int(32 * scale), int(32 * scale))
        m = len(taps)  # beyond the filter's reach of the zero padding
        assert out[0, 0, 0, 0] < 0.75  # the border does see the padding
        torch.testing.assert_close(out[:, :, m:-m, m:-m], torch.full_like(out[:, :, m:-m, m:-m], 0.75))


def test_up_then_down_reproduces_smooth_input():
    f = setup_filter([1, 3, 3, 1]).double()
    yy, xx = torch.meshgrid(
        torch.arange(24.0, dtype=torch.float64), torch.arange(24.0, dtype=torch.float64), indexing="ij"
    )
    ramp = (0.3 * xx - 0.2 * yy + 1.0)[None, None]
    out = downsample2d(upsample2d(ramp, f), f)
    assert out.shape == ramp.shape
    torch.testing.assert_close(out[..., 3:-3, 3:-3], ramp[..., 3:-3, 3:-3], rtol=1e-12, atol=1e-12)
    wave = torch.sin(2 * torch.pi * xx / 24) * torch.cos(2 * torch.pi * yy / 24)
    wave = wave[None, None]
    out = downsample2d(upsample2d(wave, f), f)
    assert (out - wave)[..., 4:-4, 4:-4].abs().max() < 0.05
    # A plain box filter does not reproduce it as well: the test can tell filters apart.
    assert not torch.allclose(downsample2d(upsample2d(ramp, None), None), ramp)


def test_upsample_places_samples_correctly():
    x = torch.zeros(1, 1, 4, 4, dtype=torch.float64)
    x[0, 0, 1, 2] = 1.0
    out = upsample2d(x, setup_filter([1, 3, 3, 1]).double())
    peak = (out[0, 0] == out.max()).nonzero().tolist()
    assert sorted(peak) == [[2, 4], [2, 5], [3, 4], [3, 5]]  # symmetric 2x2 peak around the input pixel
    torch.testing.assert_close(out.sum(), torch.tensor(4.0, dtype=torch.float64))  # mean kept: 4 pixels per input


def test_invalid_inputs_raise():
    with pytest.raises(ValueError, match="N, C, H, W"):
        upfirdn2d(torch.zeros(3, 4, 4), None)
    with pytest.raises(ValueError, match="up"):
        upfirdn2d(torch.zeros(1, 1, 4, 4), None, up=0)
    with pytest.raises(ValueError, match="padding"):
        upfirdn2d(torch.zeros(1, 1, 4, 4), None, padding=[1, 2, 3])


@pytest.mark.parametrize("up,down,separable", [(2, 1, False), (1, 2, True), (2, 2, False)])
def test_gradgradcheck(up, down, separable):
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(1, 2, 4, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    f = setup_filter([1, 3, 3, 1], separable=separable).double()

    def fn(x):
        return upfirdn2d(x, f, up=up, down=down, padding=[2, 1, 1, 2], gain=up * up)

    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))
