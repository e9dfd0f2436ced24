"""Camera rays follow EG3D's ray sampler: pixel centres, normalised intrinsics, unit directions."""

from __future__ import annotations

import torch

from gan3dkit.cameras import Cameras, frontal_camera, get_prior
from gan3dkit.render import pixel_centers, ray_bundle


def test_single_pixel_ray_is_optical_axis():
    origins, dirs = ray_bundle(frontal_camera(), 1)
    assert torch.allclose(dirs[0, 0], torch.tensor([0.0, 0.0, -1.0]), atol=1e-6)
    assert torch.allclose(origins[0, 0], torch.tensor([0.0, 0.0, 2.7]), atol=1e-5)


def test_corner_pixel_direction_matches_intrinsics():
    res, f = 8, 4.2647
    _, dirs = ray_bundle(frontal_camera(focal=f), res)
    # top-left pixel centre (0.5/R, 0.5/R): camera-space (x, y, 1) with x = y = (0.5/R - 0.5)/f; world = diag(1,-1,-1)
    x = (0.5 / res - 0.5) / f
    expect = torch.tensor([x, -x, -1.0])
    assert torch.allclose(dirs[0, 0], expect / expect.norm(), atol=1e-6)
    assert torch.allclose(dirs.norm(dim=-1), torch.ones(1, res * res))
    uv = pixel_centers(res)
    assert torch.allclose(uv[1], torch.tensor([1.5 / res, 0.5 / res]))  # row-major, x = column


def test_mirrored_camera_gives_mirrored_rays():
    cams = get_prior("cub").sample(4, torch.Generator().manual_seed(0))
    res = 6
    _, d = ray_bundle(cams, res)
    _, dm = ray_bundle(cams.mirror(), res)
    d = d.reshape(4, res, res, 3)
    dm = dm.reshape(4, res, res, 3)
    s = torch.tensor([-1.0, 1.0, 1.0])
    assert torch.allclose(dm, d.flip(2) * s, atol=1e-6)
    assert isinstance(cams.mirror(), Cameras)
