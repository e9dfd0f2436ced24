"""ImportanceRenderer against analytic fields: empty space, uniform fog, an opaque slab, importance placement."""

from __future__ import annotations

import math

import pytest
import torch

from gan3dkit.cameras import Cameras
from gan3dkit.ops import mip_ray_march
from gan3dkit.render import ImportanceRenderer, RenderingConfig, ray_bundle

from ._helpers import camera_labels, coordinate_planes


def _raw_for_sigma(sigma: float) -> float:
    """Raw density whose marcher activation softplus(raw - 1) equals ``sigma``."""
    return 1.0 + math.log(math.expm1(sigma))


def constant_decoder(sigma_raw: float, color: float = 0.25, channels: int = 3):
    def decode(features: torch.Tensor, dirs: torch.Tensor) -> dict[str, torch.Tensor]:
        b, _, n, _ = features.shape
        return {"rgb": features.new_full((b, n, channels), color), "sigma": features.new_full((b, n, 1), sigma_raw)}

    return decode


def slab_decoder(z_front: float, z_back: float, sigma_raw_in: float, box_warp: float = 1.0):
    """Opaque where world z lies in [z_back, z_front], empty elsewhere; z read from coordinate planes (plane 1, v)."""

    def decode(features: torch.Tensor, dirs: torch.Tensor) -> dict[str, torch.Tensor]:
        z = features[:, 1, :, 1:2] * (box_warp / 2)  # [B, N, 1]
        inside = (z >= z_back) & (z <= z_front)
        sigma = torch.where(inside, torch.full_like(z, sigma_raw_in), torch.full_like(z, -100.0))
        return {"rgb": torch.ones_like(z).expand(-1, -1, 3), "sigma": sigma}

    return decode


def _rays(resolution: int = 8, yaws=(0.0,)) -> tuple[torch.Tensor, torch.Tensor]:
    return ray_bundle(Cameras.from_label(camera_labels(list(yaws), lookat=(0.0, 0.0, 0.0))), resolution)


@pytest.mark.parametrize("white_back", [False, True])
def test_empty_field_renders_background(white_back):
    renderer = ImportanceRenderer(
        RenderingConfig(depth_resolution=12, depth_resolution_importance=12, white_back=white_back)
    )
    origins, dirs = _rays()
    out = renderer(torch.zeros(1, 3, 4, 8, 8), constant_decoder(-100.0), origins, dirs)
    assert out.features.shape == (1, 64, 3) and out.depth.shape == (1, 64, 1) and out.weights.shape == (1, 64, 23, 1)
    assert out.weights.abs().max() < 1e-30
    expected = 1.0 if white_back else -1.0
    torch.testing.assert_close(out.features, torch.full_like(out.features, expected), atol=1e-6, rtol=0)
    # EG3D: empty rays have no depth (NaN -> inf), then clamp to the largest sampled depth.
    assert torch.all(out.depth >= 3.3 - 1e-5)


@pytest.mark.parametrize("sigma", [0.5, 2.0])
def test_uniform_fog_opacity_is_beer_lambert(sigma):
    near, far = 2.25, 3.3
    renderer = ImportanceRenderer(
        RenderingConfig(ray_start=near, ray_end=far, depth_resolution=16, depth_resolution_importance=16)
    )
    origins, dirs = _rays()
    color = 0.25
    out = renderer(
        torch.zeros(1, 3, 4, 8, 8), constant_decoder(_raw_for_sigma(sigma), color), origins, dirs, deterministic=True
    )
    opacity = 1 - math.exp(-sigma * (far - near))
    torch.testing.assert_close(out.opacity, torch.full_like(out.opacity, opacity), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.features, torch.full_like(out.features, opacity * color * 2 - 1), atol=1e-5, rtol=0)


def test_uniform_fog_with_jitter_uses_the_jittered_extent():
    sigma, near, far, n = 1.0, 2.25, 3.3, 12
    renderer = ImportanceRenderer(
        RenderingConfig(ray_start=near, ray_end=far, depth_resolution=n, depth_resolution_importance=0)
    )
    origins, dirs = _rays()
    out = renderer(
        torch.zeros(1, 3, 4, 8, 8),
        constant_decoder(_raw_for_sigma(sigma)),
        origins,
        dirs,
        generator=torch.Generator().manual_seed(0),
    )
    step = (far - near) / (n - 1)
    # The jittered samples span between (far - near - step) and (far - near + step).
    lo, hi = 1 - math.exp(-sigma * (far - near - step)), 1 - math.exp(-sigma * (far - near + step))
    assert torch.all(out.opacity > lo) and torch.all(out.opacity < hi)
    assert out.opacity.std() > 1e-4  # jitter differs per ray


def _slab_setup(n_coarse: int = 48, n_fine: int = 48, resolution: int = 8):
    z_front, z_back = 0.12, 0.05
    cfg = RenderingConfig(plane_axes="xy_xz_yz", depth_resolution=n_coarse, depth_resolution_importance=n_fine)
    renderer = ImportanceRenderer(cfg)
    origins, dirs = _rays(resolution)
    planes = coordinate_planes(64)
    decoder = slab_decoder(z_front, z_back, _raw_for_sigma(500.0))
    entry = (origins[..., 2:] - z_front) / (-dirs[..., 2:])  # [1, M, 1] ray distance to the front face
    return renderer, planes, decoder, origins, dirs, entry


def test_opaque_slab_depth_is_its_ray_distance():
    renderer, planes, decoder, origins, dirs, entry = _slab_setup()
    out = renderer(planes, decoder, origins, dirs, generator=torch.Generator().manual_seed(1))
    assert torch.all(out.opacity > 0.999)
    assert (out.depth - entry).abs().max() < 0.02  # within one coarse step (1.05 / 47 = 0.022)
    torch.testing.assert_close(out.features, torch.ones_like(out.features), atol=2e-3, rtol=0)  # white slab


def test_importance_samples_land_where_coarse_weights_are():
    renderer, planes, decoder, origins, dirs, entry = _slab_setup(n_coarse=24, n_fine=32)
    gen = torch.Generator().manual_seed(2)
    depths = renderer.sample_stratified((1, origins.shape[1]), 24, generator=gen)
    colors, densities = renderer.evaluate_samples(planes, decoder, origins, dirs, depths, None)
    _, _, weights = mip_ray_march(colors, densities, depths)
    fine = renderer.sample_importance(depths, weights, 32, generator=gen)  # [1, M, 32, 1]
    assert fine.shape == (1, origins.shape[1], 32, 1) and not fine.requires_grad
    step = (3.3 - 2.25) / 23
    near_surface = (fine - entry.unsqueeze(-2)).abs() < 2.5 * step
    # Most fine samples sit around the surface (the +0.01 floor of the smoothed weights spreads the rest).
    assert near_surface.float().mean() > 0.75
    # Uniform coarse weights would put only ~5 / 23 of them there: the test discriminates.
    flat = renderer.sample_importance(depths, torch.ones_like(weights), 32, generator=gen)
    assert ((flat - entry.unsqueeze(-2)).abs() < 2.5 * step).float().mean() < 0.4


def test_deterministic_rendering_repeats_and_stochastic_does_not():
    renderer, planes, decoder, origins, dirs, _ = _slab_setup(n_coarse=12, n_fine=12)
    a = renderer(planes, decoder, origins, dirs, deterministic=True)
    b = renderer(planes, decoder, origins, dirs, deterministic=True)
    torch.testing.assert_close(a.depth, b.depth, atol=0, rtol=0)
    c = renderer(planes, decoder, origins, dirs)
    d = renderer(planes, decoder, origins, dirs)
    assert not torch.equal(c.depth, d.depth)


def test_sample_points_chunks_and_density_noise():
    cfg = RenderingConfig(plane_axes="xy_xz_yz")
    renderer = ImportanceRenderer(cfg)
    planes = coordinate_planes(32)
    coords = torch.rand(1, 100, 3) - 0.5
    probe = lambda f, d: {"rgb": f[:, 0], "sigma": f[:, 1, :, 1:2]}  # noqa: E731
    full = renderer.sample_points(planes, probe, coords)
    chunked = renderer.sample_points(planes, probe, coords, chunk=7)
    torch.testing.assert_close(full["rgb"], chunked["rgb"])
    inner = coords.abs().max(-1).values < 0.5 - 1 / 32
    torch.testing.assert_close(full["rgb"][inner], (coords[..., :2] * 2)[inner], atol=1e-5, rtol=0)
    noisy = ImportanceRenderer(RenderingConfig(plane_axes="xy_xz_yz", density_noise=1.0))
    out = noisy.sample_points(planes, probe, coords)
    assert (out["sigma"] - full["sigma"]).std() > 0.5


def test_config_validation_and_overrides():
    with pytest.raises(ValueError, match="plane_axes"):
        RenderingConfig(plane_axes="xz")
    with pytest.raises(ValueError, match="ray_start"):
        RenderingConfig(ray_start=3.0, ray_end=2.0)
    with pytest.raises(ValueError, match="unknown keys"):
        RenderingConfig.from_dict({"box_warp": 1.0, "bogus": 1})
    renderer = ImportanceRenderer(RenderingConfig(depth_resolution=6, depth_resolution_importance=4))
    origins, dirs = _rays(4)
    out = renderer(
        torch.zeros(1, 3, 4, 8, 8),
        constant_decoder(0.0),
        origins,
        dirs,
        depth_resolution=8,
        depth_resolution_importance=0,
    )
    assert out.weights.shape == (1, 16, 7, 1)


@pytest.mark.parametrize("disparity", [False, True])
def test_bounds_override_equals_a_renderer_with_moved_config(disparity):
    """`bounds` (the viewer's dolly) renders exactly what a renderer configured with those ray_start/ray_end renders,
    without building one; and the bounds really move the samples (a slab outside them is not seen)."""
    import dataclasses

    renderer, planes, decoder, origins, dirs, _ = _slab_setup(n_coarse=12, n_fine=12)
    renderer = ImportanceRenderer(dataclasses.replace(renderer.config, disparity_space_sampling=disparity))
    moved = ImportanceRenderer(dataclasses.replace(renderer.config, ray_start=2.5, ray_end=3.1))
    a = renderer(planes, decoder, origins, dirs, deterministic=True, bounds=(2.5, 3.1))
    b = moved(planes, decoder, origins, dirs, deterministic=True)
    torch.testing.assert_close(a.depth, b.depth, atol=0, rtol=0)
    torch.testing.assert_close(a.features, b.features, atol=0, rtol=0)
    beyond = renderer(planes, decoder, origins, dirs, deterministic=True, bounds=(4.0, 5.0))  # behind the slab
    assert torch.all(beyond.depth > 3.9)
    with pytest.raises(ValueError, match="near < far"):
        renderer(planes, decoder, origins, dirs, bounds=(3.0, 2.0))
