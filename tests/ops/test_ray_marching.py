# SPDX-License-Identifier: Apache-2.0
"""Tests for mip_ray_march: a per-ray loop oracle, empty space, uniform slabs, surface depth and depth clamping."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gan3dkit.ops import mip_ray_march


def _raw_for_sigma(sigma: float) -> float:
    """Raw density whose activation softplus(raw - 1) equals ``sigma``."""
    return 1.0 + math.log(math.expm1(sigma))


def _loop_oracle(colors, densities, depths, white_back):
    """Straightforward per-ray loop in NumPy float64, written from the formulas."""
    n, m, s, c = colors.shape
    rgb, depth, weights = np.zeros((n, m, c)), np.zeros((n, m, 1)), np.zeros((n, m, s - 1, 1))
    for i in range(n):
        for j in range(m):
            trans, total, zsum = 1.0, 0.0, 0.0
            for k in range(s - 1):
                delta = depths[i, j, k + 1, 0] - depths[i, j, k, 0]
                raw = 0.5 * (densities[i, j, k, 0] + densities[i, j, k + 1, 0])
                sigma = np.log1p(np.exp(raw - 1.0))
                alpha = 1.0 - np.exp(-sigma * delta)
                w = alpha * trans
                trans *= 1.0 - alpha + 1e-10
                weights[i, j, k, 0] = w
                rgb[i, j] += w * 0.5 * (colors[i, j, k] + colors[i, j, k + 1])
                zsum += w * 0.5 * (depths[i, j, k, 0] + depths[i, j, k + 1, 0])
                total += w
            depth[i, j, 0] = zsum / total if total > 0 else np.inf
            if white_back:
                rgb[i, j] += 1.0 - total
    depth = np.clip(depth, depths.min(), depths.max())
    return rgb * 2 - 1, depth, weights


def _depths(n: int, m: int, s: int, start: float = 2.0, end: float = 3.0) -> torch.Tensor:
    return torch.linspace(start, end, s, dtype=torch.float64).reshape(1, 1, s, 1).expand(n, m, s, 1).contiguous()


@pytest.mark.parametrize("white_back", [False, True])
def test_matches_loop_oracle(white_back):
    gen = torch.Generator().manual_seed(0)
    n, m, s = 2, 3, 12
    colors = torch.rand(n, m, s, 4, generator=gen, dtype=torch.float64)
    densities = torch.randn(n, m, s, 1, generator=gen, dtype=torch.float64) * 4
    depths = torch.sort(2 + torch.rand(n, m, s, 1, generator=gen, dtype=torch.float64), dim=2).values
    rgb, depth, weights = mip_ray_march(colors, densities, depths, white_back=white_back)
    assert rgb.shape == (n, m, 4) and depth.shape == (n, m, 1) and weights.shape == (n, m, s - 1, 1)
    exp_rgb, exp_depth, exp_w = _loop_oracle(colors.numpy(), densities.numpy(), depths.numpy(), white_back)
    np.testing.assert_allclose(weights.numpy(), exp_w, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(rgb.numpy(), exp_rgb, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(depth.numpy(), exp_depth, rtol=1e-10, atol=1e-12)


def test_empty_field_is_black_or_white():
    colors = torch.rand(2, 5, 16, 3, dtype=torch.float64)
    densities = torch.full((2, 5, 16, 1), -1000.0, dtype=torch.float64)
    depths = _depths(2, 5, 16)
    rgb, depth, weights = mip_ray_march(colors, densities, depths)
    assert torch.equal(weights, torch.zeros_like(weights))
    torch.testing.assert_close(rgb, torch.full_like(rgb, -1.0))
    rgb_white, _, _ = mip_ray_march(colors, densities, depths, white_back=True)
    torch.testing.assert_close(rgb_white, torch.full_like(rgb_white, 1.0))
    torch.testing.assert_close(depth, torch.full_like(depth, 3.0))  # NaN -> inf -> clamped to the far end


@pytest.mark.parametrize("sigma", [0.3, 1.0, 4.0])
def test_uniform_slab_opacity(sigma):
    depths = _depths(1, 1, 64, 2.25, 3.3)
    densities = torch.full((1, 1, 64, 1), _raw_for_sigma(sigma), dtype=torch.float64)
    colors = torch.full((1, 1, 64, 3), 0.5, dtype=torch.float64)
    rgb, depth, weights = mip_ray_march(colors, densities, depths)
    expected = 1 - math.exp(-sigma * (3.3 - 2.25))
    assert abs(weights.sum().item() - expected) < 1e-6
    torch.testing.assert_close(rgb, torch.full_like(rgb, 0.5 * expected * 2 - 1))
    # Weights of a homogeneous slab decay geometrically with the transmittance.
    ratios = weights[0, 0, 1:, 0] / weights[0, 0, :-1, 0]
    torch.testing.assert_close(ratios, torch.full_like(ratios, math.exp(-sigma * 1.05 / 63)))


def test_opaque_surface_depth():
    s = 97
    depths = _depths(1, 4, s)
    z0 = torch.tensor([2.2, 2.5, 2.71, 2.9], dtype=torch.float64)
    densities = torch.where(depths >= z0.reshape(1, 4, 1, 1), 1000.0, -1000.0).to(torch.float64)
    colors = torch.rand(1, 4, s, 3, dtype=torch.float64)
    _, depth, weights = mip_ray_march(colors, densities, depths)
    step = 1.0 / (s - 1)
    assert (depth[0, :, 0] - z0).abs().max() < 2 * step
    torch.testing.assert_close(weights.sum(dim=2), torch.ones(1, 4, 1, dtype=torch.float64))


def test_depth_clamped_to_global_sample_range():
    depths = torch.cat([_depths(1, 1, 8, 2.0, 2.5), _depths(1, 1, 8, 2.8, 3.0)], dim=1)
    densities = torch.full((1, 2, 8, 1), -1000.0, dtype=torch.float64)
    _, depth, _ = mip_ray_march(torch.zeros(1, 2, 8, 3, dtype=torch.float64), densities, depths)
    assert torch.equal(depth, torch.full_like(depth, 3.0))  # EG3D clamps to the max over the whole tensor
    densities[:, :, :, :] = 1000.0
    _, depth, _ = mip_ray_march(torch.zeros(1, 2, 8, 3, dtype=torch.float64), densities, depths)
    assert (depth >= 2.0).all() and (depth <= 3.0).all()


def test_density_noise_and_validation():
    colors, depths = torch.rand(1, 2, 6, 3), _depths(1, 2, 6).float()
    densities = torch.zeros(1, 2, 6, 1)
    a = mip_ray_march(colors, densities, depths, density_noise=1.0, generator=torch.Generator().manual_seed(3))[0]
    b = mip_ray_march(colors, densities, depths, density_noise=1.0, generator=torch.Generator().manual_seed(3))[0]
    clean = mip_ray_march(colors, densities, depths)[0]
    assert torch.equal(a, b) and not torch.allclose(a, clean)
    with pytest.raises(ValueError, match="softplus"):
        mip_ray_march(colors, densities, depths, clamp_mode="mipnerf")
    with pytest.raises(ValueError, match="densities"):
        mip_ray_march(colors, densities[:, :, :5], depths)


def test_gradients_flow_to_colors_and_densities():
    gen = torch.Generator().manual_seed(4)
    colors = torch.rand(1, 2, 5, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    densities = torch.randn(1, 2, 5, 1, generator=gen, dtype=torch.float64, requires_grad=True)
    depths = _depths(1, 2, 5)
    assert torch.autograd.gradcheck(lambda c, d: mip_ray_march(c, d, depths)[0], (colors, densities))
