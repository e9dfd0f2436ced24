# SPDX-License-Identifier: Apache-2.0
"""Tests for stratified depths, EG3D weight smoothing, inverse-CDF sampling and merging of sample sets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gan3dkit.ops import sample_pdf, smooth_weights, stratified_depths, unify_samples


def test_samples_concentrate_in_weighted_bin():
    gen = torch.Generator().manual_seed(0)
    rows, n_bins, k = 16, 20, 7
    bins = torch.sort(torch.rand(rows, n_bins + 1, generator=gen), dim=1).values * 1.05 + 2.25
    weights = torch.zeros(rows, n_bins)
    weights[:, k] = 1.0
    samples = sample_pdf(bins, weights, 64, generator=gen)
    assert samples.shape == (rows, 64)
    inside = (samples >= bins[:, k : k + 1]) & (samples <= bins[:, k + 1 : k + 2])
    assert inside.float().mean() >= 0.95
    uniform = sample_pdf(bins, torch.ones(rows, n_bins), 64, generator=gen)
    inside_uniform = (uniform >= bins[:, k : k + 1]) & (uniform <= bins[:, k + 1 : k + 2])
    assert inside_uniform.float().mean() < 0.5  # without the peak, the bin gets no special treatment


def test_det_matches_interpolated_inverse_cdf_and_is_sorted():
    gen = torch.Generator().manual_seed(1)
    bins = torch.sort(torch.rand(5, 9, generator=gen, dtype=torch.float64), dim=1).values
    weights = torch.rand(5, 8, generator=gen, dtype=torch.float64) * 0.9 + 0.1
    a = sample_pdf(bins, weights, 33, det=True)
    b = sample_pdf(bins, weights, 33, det=True)
    assert torch.equal(a, b)
    assert (a[:, 1:] >= a[:, :-1]).all()
    u = np.linspace(0, 1, 33)
    for r in range(5):
        pdf = (weights[r] + 1e-5) / (weights[r] + 1e-5).sum()
        cdf = np.concatenate([[0.0], np.cumsum(pdf.numpy())])
        np.testing.assert_allclose(a[r].numpy(), np.interp(u, cdf, bins[r].numpy()), rtol=1e-10, atol=1e-12)


def test_random_samples_within_range_reproducible_and_detached():
    bins = torch.linspace(1.0, 2.0, 11).expand(3, 11).clone().requires_grad_()
    weights = torch.rand(3, 10, requires_grad=True)
    s1 = sample_pdf(bins, weights, 50, generator=torch.Generator().manual_seed(5))
    s2 = sample_pdf(bins, weights, 50, generator=torch.Generator().manual_seed(5))
    assert torch.equal(s1, s2) and not s1.requires_grad
    assert (s1 >= 1.0).all() and (s1 <= 2.0).all()


def test_sample_pdf_validation():
    with pytest.raises(ValueError, match="B\\+1"):
        sample_pdf(torch.zeros(2, 5), torch.zeros(2, 5), 4)


def test_smooth_weights_matches_eg3d_recipe():
    w = torch.tensor([[0.0, 1.0, 0.0, 0.0, 0.5, 0.2]])
    expected_max = torch.tensor([[0.0, 1.0, 1.0, 0.0, 0.5, 0.5, 0.2]])  # pairwise maxima with edge padding
    expected = 0.5 * (expected_max[:, 1:] + expected_max[:, :-1]) + 0.01
    out = smooth_weights(w)
    torch.testing.assert_close(out, expected)
    pooled = F.avg_pool1d(F.max_pool1d(w[:, None], 2, 1, padding=1), 2, 1)[:, 0] + 0.01
    torch.testing.assert_close(out, pooled)
    batched = smooth_weights(torch.rand(2, 3, 10))
    assert batched.shape == (2, 3, 10) and (batched >= 0.01).all()


def test_stratified_depths_bounds_and_order():
    gen = torch.Generator().manual_seed(2)
    start, end, s = 2.25, 3.3, 48
    d = stratified_depths(start, end, s, (2, 100), generator=gen)
    assert d.shape == (2, 100, s, 1)
    step = (end - start) / (s - 1)
    lower = start + step * torch.arange(s).reshape(1, 1, s, 1)
    assert ((d >= lower - 1e-6) & (d < lower + step + 1e-6)).all()  # one jittered sample per stratum
    assert (d >= start).all() and (d <= end + step).all()  # EG3D: the last sample may pass `end` by < one step
    assert (d[:, :, 1:] >= d[:, :, :-1]).all()
    plain = stratified_depths(start, end, s, (1, 1), jitter=False)
    torch.testing.assert_close(plain[0, 0, :, 0], torch.linspace(start, end, s))
    jitter = d - lower
    assert 0.4 * step < jitter.mean() < 0.6 * step  # uniform jitter over one step


def test_stratified_depths_per_ray_bounds():
    start = torch.tensor([[1.0], [2.0]]).reshape(1, 2, 1)
    end = torch.tensor([[1.5], [4.0]]).reshape(1, 2, 1)
    d = stratified_depths(start, end, 5, (1, 2), jitter=False)
    torch.testing.assert_close(d[0, 1, :, 0], torch.linspace(2.0, 4.0, 5))
    with pytest.raises(ValueError, match="ray_end"):
        stratified_depths(3.0, 2.0, 4, (1, 1))


def test_unify_samples_sorted_and_paired():
    gen = torch.Generator().manual_seed(3)
    d1 = torch.rand(2, 3, 5, 1, generator=gen)
    d2 = torch.rand(2, 3, 4, 1, generator=gen)
    # Colour channels and densities encode the depth, so pairing can be checked after the sort.
    c1, c2 = torch.cat([d1, -d1, d1 * 2], -1), torch.cat([d2, -d2, d2 * 2], -1)
    depths, colors, densities = unify_samples(d1, c1, d1 + 10, d2, c2, d2 + 10)
    assert depths.shape == (2, 3, 9, 1) and colors.shape == (2, 3, 9, 3) and densities.shape == (2, 3, 9, 1)
    assert (depths[:, :, 1:] >= depths[:, :, :-1]).all()
    torch.testing.assert_close(colors, torch.cat([depths, -depths, depths * 2], -1))
    torch.testing.assert_close(densities, depths + 10)
    expected = torch.sort(torch.cat([d1, d2], dim=2), dim=2).values
    assert torch.equal(depths, expected)
