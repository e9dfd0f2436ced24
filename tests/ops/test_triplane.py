# SPDX-License-Identifier: Apache-2.0
"""Tests for tri-plane projection and sampling: which axes each plane sees, linear reads, out-of-box zeros."""

from __future__ import annotations

import pytest
import torch

from gan3dkit.ops import generate_planes, project_onto_planes, sample_from_planes

# (u, v) world axes seen by each plane, u = feature width axis, v = height axis. 0 = x, 1 = y, 2 = z.
EXPECTED_AXES = {
    "eg3d": [(0, 1), (0, 2), (2, 0)],
    "eg3d_compat": [(0, 1), (0, 2), (2, 0)],
    "xy_xz_yz": [(0, 1), (0, 2), (1, 2)],
}
RES = 16


def _linear_planes(n: int, n_planes: int = 3) -> torch.Tensor:
    """Planes whose channel 0 equals the normalised u (width) coordinate and channel 1 the v (height) coordinate,
    at pixel centres (align_corners=False); bilinear reads are then exact in the interior."""
    centres = (2 * torch.arange(RES, dtype=torch.float64) + 1) / RES - 1
    u = centres[None, :].expand(RES, RES)
    v = centres[:, None].expand(RES, RES)
    return torch.stack([u, v])[None, None].expand(n, n_planes, 2, RES, RES).contiguous()


@pytest.mark.parametrize("mode", sorted(EXPECTED_AXES))
def test_projection_axes(mode):
    coords = torch.tensor([[[0.1, 0.2, 0.3], [-0.4, 0.5, -0.6]]])
    proj = project_onto_planes(generate_planes(mode), coords)  # [3, 2, 2]
    for p, (a, b) in enumerate(EXPECTED_AXES[mode]):
        torch.testing.assert_close(proj[p], coords[0][:, [a, b]])


@pytest.mark.parametrize("mode", sorted(EXPECTED_AXES))
@pytest.mark.parametrize("box_warp", [1.0, 1.6])
def test_linear_planes_return_analytic_values(mode, box_warp):
    gen = torch.Generator().manual_seed(0)
    half_interior = (1 - 1 / RES) * box_warp / 2  # between the outermost pixel centres
    coords = (torch.rand(2, 50, 3, generator=gen, dtype=torch.float64) * 2 - 1) * half_interior
    feats = sample_from_planes(generate_planes(mode, dtype=torch.float64), _linear_planes(2), coords, box_warp=box_warp)
    assert feats.shape == (2, 3, 50, 2)
    scaled = coords * 2 / box_warp
    for p, (a, b) in enumerate(EXPECTED_AXES[mode]):
        torch.testing.assert_close(feats[:, p, :, 0], scaled[..., a])
        torch.testing.assert_close(feats[:, p, :, 1], scaled[..., b])


def _axis_sensitivity(mode: str) -> list[set[int]]:
    """For each plane, the set of world axes its sampled features respond to (non-zero gradient)."""
    gen = torch.Generator().manual_seed(1)
    planes = torch.randn(1, 3, 4, RES, RES, generator=gen, dtype=torch.float64)
    coords = ((torch.rand(1, 64, 3, generator=gen, dtype=torch.float64) - 0.5) * 0.8).requires_grad_()
    feats = sample_from_planes(generate_planes(mode, dtype=torch.float64), planes, coords)
    seen = []
    for p in range(3):
        (grad,) = torch.autograd.grad(feats[:, p].sum(), coords, retain_graph=True)
        seen.append({axis for axis in range(3) if grad[..., axis].abs().max() > 1e-9})
    return seen


def test_eg3d_mode_has_no_yz_plane():
    seen = _axis_sensitivity("eg3d")
    assert seen == [{0, 1}, {0, 2}, {0, 2}]
    assert all(s != {1, 2} for s in seen)
    assert all(0 in s for s in seen)  # every plane responds to x


def test_corrected_mode_sees_all_three_pairs():
    assert _axis_sensitivity("xy_xz_yz") == [{0, 1}, {0, 2}, {1, 2}]


@pytest.mark.parametrize("mode", ["eg3d", "xy_xz_yz"])
def test_x_only_plane_varies_with_x(mode):
    """Every plane filled with a function of x alone (placed on the axis where that plane sees x)."""
    feats_in = torch.zeros(1, 3, 1, RES, RES, dtype=torch.float64)
    centres = (2 * torch.arange(RES, dtype=torch.float64) + 1) / RES - 1
    for p, (a, b) in enumerate(EXPECTED_AXES[mode]):
        if a == 0:
            feats_in[0, p, 0] = centres[None, :]
        elif b == 0:
            feats_in[0, p, 0] = centres[:, None]
    xs = torch.linspace(-0.4, 0.4, 9, dtype=torch.float64)
    coords = torch.stack([xs, torch.full_like(xs, 0.1), torch.full_like(xs, -0.2)], -1)[None]
    out = sample_from_planes(generate_planes(mode, dtype=torch.float64), feats_in, coords)[0, :, :, 0]  # [3, 9]
    sees_x = [0 in pair for pair in EXPECTED_AXES[mode]]
    for p in range(3):
        if sees_x[p]:
            torch.testing.assert_close(out[p], 2 * xs)
        else:
            assert torch.equal(out[p], torch.zeros_like(xs))


@pytest.mark.parametrize("mode", ["eg3d", "xy_xz_yz"])
def test_out_of_box_points_read_zero(mode):
    planes = torch.rand(2, 3, 5, RES, RES) + 1.0  # strictly positive everywhere
    coords = torch.tensor([[[1.5, 1.5, 1.5], [-2.0, 3.0, -1.2], [0.0, 0.0, 0.0]]]).expand(2, 3, 3)
    feats = sample_from_planes(generate_planes(mode), planes, coords, box_warp=1.0)
    assert torch.equal(feats[:, :, :2], torch.zeros(2, 3, 2, 5))
    assert (feats[:, :, 2] > 0).all()
    border = sample_from_planes(generate_planes(mode), planes, coords, padding_mode="border")
    assert (border[:, :, :2] > 0).all()


def test_validation():
    with pytest.raises(ValueError, match="plane_axes"):
        generate_planes("xyz")
    with pytest.raises(ValueError, match="coords"):
        sample_from_planes(generate_planes(), torch.zeros(1, 3, 2, 4, 4), torch.zeros(2, 5, 3))
