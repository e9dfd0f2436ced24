"""Warp loss (zero at the right pose with exact depth), camera parameterisations, pose recovery on G's own render."""

from __future__ import annotations

import math

import pytest
import torch

from gan3dkit.cameras import Cameras, ypr_to_cam2world
from gan3dkit.invert.pose import LearnableCamera, pose_error, rotation_geodesic
from gan3dkit.invert.warp import reproject, warp_loss
from gan3dkit.render.rays import ray_bundle

from .conftest import render_target


def _label(yaw: float, pitch: float = 0.0, roll: float = 0.0, pivot=(0.0, 0.0, 0.0)) -> torch.Tensor:
    c2w = ypr_to_cam2world(torch.tensor([yaw]), torch.tensor([pitch]), torch.tensor([roll]), 2.7, pivot).float()
    return Cameras.from_matrices(c2w, 4.2647).to_label()


def _plane_view(label: torch.Tensor, res: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Analytic render of the textured plane z = 0: image [1, 3, r, r] and exact ray depth [1, 1, r, r]."""
    o, d = ray_bundle(Cameras.from_label(label.double()), res)
    t = -o[..., 2] / d[..., 2]
    hit = o + d * t[..., None]
    x, y = hit[..., 0], hit[..., 1]
    tex = torch.stack([torch.sin(6 * x), torch.cos(5 * y), torch.sin(4 * (x + y))], 1)  # [1, 3, N]
    return tex.reshape(1, 3, res, res).float(), t.reshape(1, 1, res, res).float()


def test_reproject_identity_is_pixel_centres():
    cam = _label(0.2, 0.1)
    depth = torch.full((1, 1, 8, 8), 2.5)
    grid, valid = reproject(depth, cam, cam)
    centres = (torch.arange(8) + 0.5) / 8 * 2 - 1
    assert torch.allclose(grid[0, :, :, 0], centres[None].expand(8, 8), atol=1e-5)
    assert torch.allclose(grid[0, :, :, 1], centres[:, None].expand(8, 8), atol=1e-5)
    assert valid.all()


def test_warp_loss_zero_for_right_pose_and_exact_depth():
    """A plane seen from the canonical camera, warped into a second camera by that camera's exact depth, reproduces
    the second camera's image (bilinear resampling error only); a wrong pose does not."""
    canonical, true = _label(0.0), _label(0.25, 0.05)
    canon_img, _ = _plane_view(canonical, 128)
    target, depth_true = _plane_view(true, 64)
    right = warp_loss(target, canon_img, depth_true, true, canonical, mask="none")
    wrong_cam = _label(0.35, 0.05)
    _, depth_wrong = _plane_view(wrong_cam, 64)
    wrong = warp_loss(target, canon_img, depth_wrong, wrong_cam, canonical, mask="none")
    assert right < 0.01
    assert wrong > 10 * right
    # the same image (no warp needed) gives exactly zero
    assert warp_loss(canon_img, canon_img, _plane_view(canonical, 128)[1], canonical, canonical, "none") < 1e-5


def test_warp_loss_gradient_reaches_pose():
    canonical, true = _label(0.0), _label(0.2)
    canon_img, _ = _plane_view(canonical, 64)
    target, depth = _plane_view(true, 32)
    cam = LearnableCamera(_label(0.25), "euler", translation=False)
    loss = warp_loss(target, canon_img, depth, cam(), canonical, mask="none")
    loss.backward()
    assert cam.params.grad is not None and cam.params.grad.abs().sum() > 0


@pytest.mark.parametrize("rep", ["euler", "quaternion", "6d"])
def test_learnable_camera_reproduces_label(rep):
    lab = _label(0.3, -0.1, 0.0, pivot=(0.0, 0.0, 0.2))  # EG3D FFHQ-like: looks at the pivot
    cam = LearnableCamera(lab, rep)
    assert isinstance(cam(), Cameras)  # typed: no label round trip between the pose and the renderer
    assert torch.allclose(cam().to_label(), lab, atol=1e-5)
    assert abs(float(cam().detach().radius) - 2.7) < 1e-5


def test_6d_represents_roll_and_translation_keeps_radius():
    lab = _label(0.1, 0.0, 0.3)
    cam = LearnableCamera(lab, "6d")
    assert torch.allclose(cam().to_label(), lab, atol=1e-5)
    with torch.no_grad():
        cam.translation += torch.tensor([[0.2, -0.1, 0.0]])
    moved = cam().detach()
    assert abs(float(moved.radius) - 2.7) < 1e-5  # renormalised to the radius
    assert float(rotation_geodesic(moved.rotations, Cameras.from_label(lab).rotations)) < 1e-5  # orientation kept


def test_pose_optimisation_recovers_yaw_offset(G):
    """Joint pose optimisation (Alg. 3) with w fixed at the truth recovers a 0.15 rad yaw offset to < 1 degree."""
    from gan3dkit.generate.views import view_cameras
    from gan3dkit.invert.config import preset
    from gan3dkit.invert.losses import build_perceptual
    from gan3dkit.invert.projector import project

    img, ws, true, _ = render_target(G, 0.3)
    start = view_cameras(G, [0.15], 0.0, "cpu").to_label()
    cfg = preset("ko", 3)
    cfg.projector.steps, cfg.projector.lr, cfg.projector.noise_factor = 20, 0.0, 0.0
    cfg.projector.optimize_noise, cfg.projector.w_avg_samples = False, 16
    cam = LearnableCamera(start, "euler", translation=False)
    p = project(G, img, start, cfg.projector, build_perceptual("none", "vgg"), pose_mode="joint", camera_module=cam,
                pose_cfg=cfg.pose, pose_params=[{"params": [cam.params], "lr": 3e-2}], w_init=ws)
    before, after = pose_error(start, true)["rotation_deg"], pose_error(p.camera, true)["rotation_deg"]
    assert before == pytest.approx(math.degrees(0.15), abs=1e-3)
    assert after < 1.0, (before, after)


def test_pose_opt_decodes_the_input_label_once(G, monkeypatch):
    """`invert --pose-opt`: the given label becomes Cameras once; the pose module, the warp and the renderer keep
    them (the frontal canonical view of Alg. 1's warp is the one other camera, made from angles as `Cameras`: no
    label is decoded for it)."""
    from gan3dkit.invert import InvertItem, invert, preset
    from gan3dkit.invert.outputs import to_uint8

    decoded = []
    real = Cameras.from_label.__func__

    def counting(cls, label):
        decoded.append(tuple(torch.as_tensor(label).shape))
        return real(cls, label)

    img, _, cam, _ = render_target(G, 0.2)
    item = InvertItem("t", to_uint8(img), cam[0].numpy(), "test")
    for algorithm, expected in ((3, 1), (1, 1)):
        cfg = preset("ko", algorithm)
        cfg.perceptual = cfg.tune_perceptual = "none"
        cfg.projector.steps, cfg.projector.w_avg_samples, cfg.tune.steps, cfg.pose.warmup_steps = 3, 16, 0, 1
        cfg.pose.warp_features = "rgb"
        decoded.clear()
        monkeypatch.setattr(Cameras, "from_label", classmethod(counting))
        inv = invert(G, item, cfg)
        monkeypatch.undo()
        assert isinstance(inv.camera, Cameras)
        assert len(decoded) == expected, (algorithm, decoded)
