"""Which plane sees which world axis under ``plane_axes="eg3d"`` (XY, XZ, ZX) and ``"xy_xz_yz"``.

EG3D's released projection: plane 0 = (x, y), plane 1 = (x, z), plane 2 = (z, x). World y is seen only by plane 0
(along its height axis); planes 1 and 2 both see (x, z). The corrected layout adds y to plane 2 = (y, z) (width
axis). So a pattern that varies only along world y is seen by plane 0 in both modes, and by plane 2 only in
``xy_xz_yz``.
"""

from __future__ import annotations

import pytest
import torch

from gan3dkit.render import ImportanceRenderer, RenderingConfig


def _probe(features: torch.Tensor, dirs: torch.Tensor) -> dict[str, torch.Tensor]:
    """Return each plane's first channel as a colour so the test can look at the planes one by one."""
    return {"rgb": features[..., 0].permute(0, 2, 1), "sigma": features[:, :1, :, :1].squeeze(1)}


def _per_plane(plane_axes: str, planes: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:  # [N, 3]
    renderer = ImportanceRenderer(RenderingConfig(plane_axes=plane_axes))
    return renderer.sample_points(planes, _probe, coords)["rgb"][0]


def _ramp(resolution: int = 32) -> torch.Tensor:  # [R, R] varying along the height axis only
    return torch.linspace(-1, 1, resolution).reshape(resolution, 1).expand(resolution, resolution)


@pytest.fixture
def y_line() -> torch.Tensor:  # points that differ only in y
    y = torch.linspace(-0.4, 0.4, 9)
    return torch.stack([torch.full_like(y, 0.1), y, torch.full_like(y, -0.2)], dim=-1)[None]


@pytest.mark.parametrize("plane_axes,sees_y", [("eg3d", [True, False, False]), ("xy_xz_yz", [True, False, True])])
def test_which_planes_see_world_y(plane_axes, sees_y, y_line):
    torch.manual_seed(0)
    planes = torch.randn(1, 3, 1, 32, 32)  # generic patterns on all planes
    feats = _per_plane(plane_axes, planes, y_line)  # [9, 3]
    varies = [bool(feats[:, p].std() > 1e-3) for p in range(3)]
    assert varies == sees_y


def test_y_pattern_on_plane0_is_seen_in_both_modes(y_line):
    planes = torch.zeros(1, 3, 1, 32, 32)
    planes[0, 0, 0] = _ramp()  # plane 0 varies along its height axis = world y in both modes
    for mode in ("eg3d", "xy_xz_yz"):
        feats = _per_plane(mode, planes, y_line)
        assert torch.all(feats[1:, 0] > feats[:-1, 0])  # monotonic in y


def test_pattern_on_plane2_height_axis():
    """Plane 2's height axis holds world x in "eg3d" (the ZX quirk) and world z in "xy_xz_yz"."""
    planes = torch.zeros(1, 3, 1, 32, 32)
    planes[0, 2, 0] = _ramp()
    t = torch.linspace(-0.4, 0.4, 9)
    along_x = torch.stack([t, torch.zeros_like(t), torch.zeros_like(t)], -1)[None]
    along_z = torch.stack([torch.zeros_like(t), torch.zeros_like(t), t], -1)[None]
    assert _per_plane("eg3d", planes, along_x)[:, 2].std() > 0.1
    assert _per_plane("eg3d", planes, along_z)[:, 2].std() < 1e-6
    assert _per_plane("xy_xz_yz", planes, along_z)[:, 2].std() > 0.1
    assert _per_plane("xy_xz_yz", planes, along_x)[:, 2].std() < 1e-6
