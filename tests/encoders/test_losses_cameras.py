"""Mirror loss on a symmetric scene, per-sample camera augmentation, differentiable LPIPS."""

from __future__ import annotations

import math

import pytest
import torch
from encoder_helpers import MICRO_G

from gan3dkit.cameras.camera import Cameras
from gan3dkit.encoders.losses import symmetry_loss
from gan3dkit.encoders.render import CameraAugConfig, mirror_planes, sample_cameras
from gan3dkit.generate.views import view_cameras
from gan3dkit.metrics.perceptual_loss import PerceptualLoss
from gan3dkit.networks import TriPlaneGenerator
from gan3dkit.train.config import train_preset
from gan3dkit.utils.config import apply_overrides


def _G(plane_axes: str = "eg3d"):
    cfg = apply_overrides(train_preset("tiny"), MICRO_G + [f"generator.rendering.plane_axes={plane_axes}"])
    torch.manual_seed(1)
    return TriPlaneGenerator(cfg.generator).eval().requires_grad_(False)


def test_mirror_loss_zero_for_symmetric_face_at_mirrored_poses():
    for axes in ("eg3d", "xy_xz_yz"):
        G = _G(axes)
        with torch.no_grad():
            ws = G.mapping(torch.randn(1, G.z_dim), torch.zeros(1, 25))
            planes = G.synthesize_planes(ws)
            sym = 0.5 * (planes + mirror_planes(planes, axes))  # a face symmetric under x -> -x
            c = view_cameras(G, [0.35], 0.1, "cpu").to_label()
            cm = Cameras.from_label(c).mirror().to_label()

            def raw(p, cam, G=G, ws=ws):  # raw rendering: SR convs are not mirror-equivariant
                out = G.render_planes(p, cam, ws, neural_rendering_resolution=16, deterministic_render=True)
                return out["image_raw"]

            x, y_m = raw(sym, c), raw(sym, cm)
            sigma = torch.rand(1, 1, 16, 16) + 0.5  # any confidence map
            assert symmetry_loss(x.flip(-1), y_m, sigma) < 1e-9
            # the same loss on the unsymmetrised face is clearly positive
            xa, ya = raw(planes, c), raw(planes, cm)
            assert symmetry_loss(xa.flip(-1), ya, sigma) > 1e-4


def test_symmetry_loss_weights_by_confidence():
    x, y = torch.zeros(1, 3, 4, 4), torch.ones(1, 3, 4, 4)
    one = symmetry_loss(x, y, torch.ones(1, 1, 4, 4))
    assert one == 3.0 and symmetry_loss(x, y, 2 * torch.ones(1, 1, 4, 4)) == 1.5
    nll = symmetry_loss(x, y, torch.ones(1, 1, 4, 4), likelihood=True)
    assert math.isclose(float(nll), math.log(2**0.5) + 2**0.5, rel_tol=1e-6)


def test_camera_augmentation_is_per_sample_with_the_seed_distributions():
    cfg = CameraAugConfig()
    g = torch.Generator().manual_seed(0)
    cams, pose = sample_cameras(cfg, 4000, 2.7, 4.2647, (0.0, 0.0, 0.2), True, g)
    assert all(not p for p in cams[:5].problems())
    pp = cams.principal_point
    assert abs(pp[:, 0].std().item() - 14 / 512) < 0.003 and abs(pp.mean().item() - 0.5) < 0.002
    assert abs(cams.radius.std().item() - 0.1) < 0.01 and abs(cams.radius.mean().item() - 2.7) < 0.01
    assert abs(math.degrees(pose[:, 2].std().item()) - 2.0) < 0.15
    assert pose[:, 0].abs().max() <= math.radians(49) + 1e-6 and pose[:, 0].std() > 0.4
    assert len(torch.unique(cams.focal[:, 0])) > 3990  # one focal per sample, not one per batch
    mvc, mv_pose = sample_cameras(cfg, 100, 2.7, 4.2647, (0.0, 0.0, 0.2), False, g)
    assert torch.allclose(mvc.focal, torch.full_like(mvc.focal, 4.2647)) and torch.all(mv_pose[:, 2] == 0)
    assert torch.allclose(mvc.principal_point, torch.full((100, 2), 0.5))


def test_perceptual_loss_has_gradients_and_says_what_ran(tmp_path, monkeypatch):
    from gan3dkit.metrics.weights import WeightsUnavailable

    monkeypatch.setenv("GAN3DKIT_CACHE", str(tmp_path / "empty-cache"))
    try:  # without the AlexNet file, LPIPS is refused, never silently replaced by a random backbone
        PerceptualLoss.load("alex")
    except WeightsUnavailable:
        pass
    else:
        pytest.skip("the ImageNet AlexNet weights are reachable here: the refusal cannot be shown")
    lp = PerceptualLoss.load("alex", random_backbone=True)
    x = torch.rand(2, 3, 32, 32, requires_grad=True)
    y = torch.rand(2, 3, 32, 32)
    d = lp(x * 2 - 1, y * 2 - 1)
    d.backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert float(lp(y, y)) == 0.0
    assert "alex" in lp.description and not lp.calibrated and "random" in lp.description.lower()
