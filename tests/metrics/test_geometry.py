"""Geometry metrics: depth errors (invariances, least-squares reference), pose errors, NFS, 3DGP depth compositing."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gan3dkit.metrics import geometry as geo
from gan3dkit.ops import mip_ray_march


def _depth_pair(seed=0, b=3, size=16):
    g = torch.Generator().manual_seed(seed)
    ref = 2.0 + torch.nn.functional.avg_pool2d(torch.rand(b, 1, size, size, generator=g), 5, 1, 2)
    valid = torch.rand(b, 1, size, size, generator=g) > 0.2
    return ref, valid, g


def test_depth_errors_are_scale_and_shift_invariant():
    ref, valid, g = _depth_pair()
    ref = ref.double()
    pred = 3.0 * ref - 1.5
    assert geo.depth_nmse(pred, ref, valid).abs().max() < 1e-10
    l1, rmse = geo.depth_si_errors(pred, ref, valid)
    assert l1.abs().max() < 1e-10 and rmse.abs().max() < 1e-10
    noisy = ref + 0.05 * torch.randn(ref.shape, generator=g, dtype=torch.float64)
    assert (geo.depth_nmse(noisy, ref, valid) > 0).all()
    # invalid pixels never matter, even when infinite
    poisoned = torch.where(valid, pred, torch.full_like(pred, math.inf))
    assert geo.depth_nmse(poisoned, ref, valid).abs().max() < 1e-10


def test_depth_si_errors_match_numpy_least_squares():
    ref, valid, g = _depth_pair(1)
    pred = ref**2 + 0.1 * torch.randn(ref.shape, generator=g)
    l1, rmse = geo.depth_si_errors(pred, ref, valid)
    for b in range(len(ref)):
        p, r = pred[b][valid[b]].double().numpy(), ref[b][valid[b]].double().numpy()
        (s, t), *_ = np.linalg.lstsq(np.stack([p, np.ones_like(p)], 1), r, rcond=None)
        res = s * p + t - r
        assert float(l1[b]) == pytest.approx(np.abs(res).mean(), rel=1e-9)
        assert float(rmse[b]) == pytest.approx(np.sqrt((res**2).mean()), rel=1e-9)


def test_depth_nmse_matches_carver_standardisation():
    ref, valid, g = _depth_pair(2)
    pred = ref + 0.1 * torch.randn(ref.shape, generator=g)
    for b in range(len(ref)):
        p, r = pred[b][valid[b]].double().numpy() / 10, ref[b][valid[b]].double().numpy() / 10  # Carver's /10
        zp, zr = (p - p.mean()) / p.std(), (r - r.mean()) / r.std()
        assert float(geo.depth_nmse(pred, ref, valid)[b]) == pytest.approx(((zp - zr) ** 2).mean(), rel=1e-9)
    few = torch.zeros_like(valid)
    few[0, 0, 0, 0] = True
    assert torch.isnan(geo.depth_nmse(pred, ref, few)).all()


def test_rotvec_matches_scipy_and_pose_errors():
    rotation = pytest.importorskip("scipy.spatial.transform").Rotation
    g = torch.Generator().manual_seed(3)
    yaw, pitch = (torch.rand(20, generator=g, dtype=torch.float64) - 0.5) * 2.4, (
        torch.rand(20, generator=g, dtype=torch.float64) - 0.5) * 1.2
    r = geo.head_rotation(yaw, pitch)
    np.testing.assert_allclose(geo.rotvec(r).numpy(), rotation.from_matrix(r.numpy()).as_rotvec(), atol=1e-9)
    true = torch.stack([yaw, pitch], 1)
    same = geo.pose_errors(true, true)
    assert all(float(v.abs().max()) < 1e-6 for v in same.values())
    shifted = geo.pose_errors(true, true + torch.tensor([math.radians(10), 0.0], dtype=torch.float64))
    torch.testing.assert_close(shifted["yaw_abs_deg"], torch.full((20,), 10.0, dtype=torch.float64))
    wrap = geo.pose_errors(torch.tensor([[math.radians(179), 0.0]]), torch.tensor([[math.radians(-179), 0.0]]))
    assert float(wrap["yaw_abs_deg"][0]) == pytest.approx(2.0, abs=1e-4)
    assert float(wrap["geodesic_deg"][0]) == pytest.approx(2.0, abs=1e-3)


def test_non_flatness_score_extremes_and_3dgp_definition():
    flat = torch.full((2, 1, 16, 16), 2.5)
    assert torch.allclose(geo.non_flatness(flat, 2.0, 3.0), torch.ones(2))
    ramp = torch.linspace(2.0, 3.0, 64 * 4).view(1, 1, 16, 16)  # 4 pixels in each of 64 bins
    assert float(geo.non_flatness(ramp, 2.0, 3.0)[0]) == pytest.approx(64.0, rel=1e-4)
    rand = 2.0 + torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(4))
    hist = torch.stack([torch.histc(d.flatten().clamp(2.0, 3.0), 64, 2.0, 3.0) for d in rand])
    p = hist / hist.sum(1, keepdim=True)
    torch.testing.assert_close(geo.non_flatness(rand, 2.0, 3.0), torch.exp(-(p * torch.log(p + 1e-12)).sum(1)))
    assert torch.allclose(geo.non_flatness(torch.full((1, 1, 4, 4), 99.0), 2.0, 3.0), torch.ones(1))  # clamped


def test_cut_weights_without_cut_equal_eg3d_ray_marcher():
    g = torch.Generator().manual_seed(5)
    depths = torch.sort(2.25 + torch.rand(2, 7, 10, 1, generator=g), dim=2).values
    sigma = torch.randn(2, 7, 10, 1, generator=g) * 3
    colors = torch.rand(2, 7, 10, 3, generator=g)
    w, z_mid = geo.cut_weights(sigma, depths, 0.0)
    _, depth_ref, w_ref = mip_ray_march(colors, sigma, depths, impl="ref")
    torch.testing.assert_close(w, w_ref)
    expected = ((w * z_mid).sum(2) / w.sum(2)).clamp(depths.min(), depths.max())
    torch.testing.assert_close(expected, depth_ref)
    cut, _ = geo.cut_weights(sigma, depths, 0.5)
    assert (cut.sum(2) <= w.sum(2) + 1e-6).all() and (cut == 0).float().mean() > (w == 0).float().mean()
    assert float(geo._quantile(torch.arange(11.0), 0.25)) == float(torch.quantile(torch.arange(11.0), 0.25))


def test_depth_to_uint8_near_is_white_background_black():
    d = torch.tensor([[[[2.0, 2.5], [3.0, math.inf]]]])
    img = geo.depth_to_uint8(d)
    assert img.shape == (1, 3, 2, 2) and img.dtype == torch.uint8
    assert img[0, 0].tolist() == [[255, 128], [0, 0]]
