"""PoF3D: camera flips, which parameters each pose term trains, the learned pose distribution, composition."""

from __future__ import annotations

import math

import pytest
import torch

from gan3dkit.cameras import mirror_labels
from gan3dkit.cameras.camera import Cameras
from gan3dkit.cameras.samplers import lookat_cam2world
from gan3dkit.methods.hyperpose import HyperPoseConfig
from gan3dkit.methods.hyperpose_pof3d import HyperPosePoF3DLoss
from gan3dkit.methods.pof3d import PoF3DConfig, PoF3DLoss, flip_cameras
from gan3dkit.methods.posefree import pose_angles
from gan3dkit.networks import TriPlaneGenerator
from gan3dkit.networks.config import LearnedPoseConfig
from gan3dkit.networks.pose_heads import LearnedPose, PoseHeadConfig, PoseHeadDiscriminator
from gan3dkit.train.config import train_preset


def _cams(h, v) -> torch.Tensor:
    h, v = torch.as_tensor(h, dtype=torch.float64), torch.as_tensor(v, dtype=torch.float64)
    return Cameras.from_matrices(lookat_cam2world(h, v, 2.7, (0, 0, 0)).float(), 4.2647).to_label()


def test_flips_are_involutions_and_fix_the_symmetric_pose():
    c = _cams([1.2, 1.9, 1.5], [1.4, 1.7, 1.6])
    for kind in ("yaw", "pitch"):
        assert torch.equal(flip_cameras(flip_cameras(c, kind), kind), c)
    frontal = _cams([math.pi / 2], [math.pi / 2])
    # a symmetric pose is its own mirror: the flipped render equals the render, so the symmetry term adds nothing new
    assert torch.allclose(flip_cameras(frontal, "yaw"), frontal, atol=1e-6)
    assert torch.allclose(flip_cameras(frontal, "pitch"), frontal, atol=1e-6)
    # the yaw flip is the image mirror of a roll-free camera and negates the yaw offset
    assert torch.allclose(pose_angles(flip_cameras(c, "yaw"))[:, 1], -pose_angles(c)[:, 1], atol=1e-5)
    assert torch.allclose(flip_cameras(c, "yaw")[:, :16], mirror_labels(c)[:, :16], atol=1e-6)


def _nets(method="pof3d", overrides=()):
    from gan3dkit.utils.config import apply_overrides

    cfg = apply_overrides(train_preset("tiny", method), list(overrides))
    G = TriPlaneGenerator(cfg.generator)
    out_dim = 2 if method == "pof3d" else cfg.method.hyperpose.embed_dim
    D = PoseHeadDiscriminator(cfg.discriminator, PoseHeadConfig(out_dim=out_dim, normalize=method != "pof3d"))
    return cfg, G, D


def _norm(module, prefix):
    return sum(float(p.grad.abs().sum()) for n, p in module.named_parameters()
               if n.startswith(prefix) and p.grad is not None)


def test_pose_consistency_trains_only_the_pose_mapping():
    torch.manual_seed(0)
    cfg, G, D = _nets()
    loss = PoF3DLoss(G, D, cfg.loss, 4, PoF3DConfig(flip_to_dis=False))
    st = loss.step_state(0)
    gen = loss.run_G(torch.randn(4, G.z_dim), torch.zeros(4, 25), st)
    D.requires_grad_(False)
    _, aux, stats = loss.fake_terms(gen, torch.zeros(4, 25), st, "G")  # aux = pose_gd only
    aux.backward()
    assert stats["Loss/G/pose_gd"] > 0
    assert _norm(G, "pose_mapping") > 0
    assert _norm(G, "backbone") == 0 and _norm(G, "superresolution") == 0  # w is detached, D's pred too


def test_d_camera_head_learns_from_g_and_the_gan_loss_reaches_the_pose_mapping():
    torch.manual_seed(1)
    cfg, G, D = _nets()
    loss = PoF3DLoss(G, D, cfg.loss, 4, PoF3DConfig(flip_to_dis=False, dis_cam_weight=2.0))
    st = loss.step_state(0)
    gen = loss.run_G(torch.randn(4, G.z_dim), torch.zeros(4, 25), st)
    det = {k: v.detach() for k, v in gen.items() if k in ("image", "image_raw", "camera", "pose", "ws")}
    logits, aux, stats = loss.fake_terms(det, det["camera"], st, "D")
    aux.backward(retain_graph=True)  # dis_cam_weight * MSE(D_cam, pose_G.detach()) (+ 0 * fake term at weight 1)
    assert stats["Loss/D/cam"] > 0 and _norm(D, "pose_head") > 0
    assert all(p.grad is None for p in G.parameters())
    # the pose-aware D is conditioned on its own prediction, detached: the logits do not train the camera head
    D.zero_grad(set_to_none=True)
    logits.sum().backward()
    assert _norm(D, "pose_head") == 0 and _norm(D, "mapping") > 0
    # G side: the adversarial loss reaches the pose mapping through the rendering camera
    D.requires_grad_(False)
    gen = loss.run_G(torch.randn(4, G.z_dim), torch.zeros(4, 25), st)
    torch.nn.functional.softplus(-loss.fake_terms(gen, gen["camera"], st, "G")[0]).mean().backward()
    assert _norm(G, "pose_mapping") > 0


def test_learned_pose_distribution_moves_toward_a_target():
    """Toy problem: the pose mapping, initialised off the truth, regresses D's (here fixed) pose reading."""
    torch.manual_seed(0)
    rendering = train_preset("tiny").generator.rendering
    head = LearnedPose(16, LearnedPoseConfig(lr_multiplier=1.0), rendering)
    w = torch.randn(512, 16)
    target = torch.tensor([math.pi / 2 + 0.4, math.pi / 2 - 0.1])  # the true pose distribution's centre
    opt = torch.optim.Adam(head.parameters(), lr=0.01, betas=(0.0, 0.99))
    start = (head(w).mean(0) - target).abs().sum().item()
    for _ in range(300):
        opt.zero_grad()
        torch.nn.functional.mse_loss(head(w), target.expand(len(w), 2)).backward()
        opt.step()
    end = (head(w).mean(0) - target).abs().sum().item()
    assert start > 0.2 and end < 0.2 * start


def test_hyperpose_pof3d_renders_twins_at_learned_poses():
    torch.manual_seed(2)
    cfg, G, D = _nets("hyperpose+pof3d", ["pof3d.mechanism=learned_only", "discriminator.c_dim=0"])
    loss = HyperPosePoF3DLoss(G, D, cfg.loss, 4, HyperPoseConfig(), cfg.method.pof3d)
    z, c = loss.arrange_fakes(torch.randn(4, G.z_dim), torch.zeros(4, 25))
    gen = loss.run_G(z, c, loss.step_state(0))
    cam = gen["camera"]
    assert torch.allclose(cam[2], cam[1]) and torch.allclose(cam[3], cam[0])  # twin k at scene k-1's pose
    assert not torch.allclose(cam[0], cam[1])
    D.requires_grad_(False)
    logits, aux, _ = loss.fake_terms(gen, c, loss.step_state(0), "G")
    (torch.nn.functional.softplus(-logits).mean() + aux).backward()
    assert _norm(G, "pose_mapping") > 0


@pytest.mark.parametrize("method", ["pof3d", "hyperpose+pof3d"])
def test_presets_configure_learned_pose_methods(method):
    cfg = train_preset("tiny", method)
    cfg.validate()
    assert cfg.generator.learned_pose is not None and cfg.generator.c_gen_conditioning_zero
    assert cfg.discriminator.c_dim == 2  # pose-aware D (the combinations default to PoF3D's full mechanism)
    objects = train_preset("tiny_objects", "pof3d")
    assert objects.generator.learned_pose.h_mean == pytest.approx(math.pi)
    assert objects.method.pof3d.flip_type == "flip_both_shapenet"
    with pytest.raises(ValueError, match="learned_pose"):
        bad = train_preset("tiny", "eg3d")
        bad.generator.learned_pose = LearnedPoseConfig()
        bad.validate()


@pytest.mark.parametrize("method", ["pof3d", "hyperpose+pof3d"])
def test_init_learned_starts_the_pose_mapping_at_the_prior(method):
    """pose.init_learned: the built G's learned yaw/pitch have the (here deliberately narrow) prior's mean and std on
    fresh z; without it, the start is PoF3D's random one; the global RNG is not consumed by the start."""
    from gan3dkit.cameras import get_prior
    from gan3dkit.train.loop import _build_runtime
    from gan3dkit.utils.config import apply_overrides

    prior = get_prior("synthetic_heads_wide").to_dict()
    cfg = apply_overrides(train_preset("tiny", method), ["pose.init_learned=true", "pose.yaw_std=0.3"])

    def learned(cfg):
        torch.manual_seed(0)
        G = _build_runtime(cfg, None, prior, torch.device("cpu")).G
        after = torch.rand([]).item()
        z = torch.randn(2048, G.z_dim, generator=torch.Generator().manual_seed(9))
        with torch.no_grad():
            return G.pose_mapping(G.mapping(z, torch.zeros(len(z), 25))[:, 0]), after

    hv, after = learned(cfg)
    assert abs(hv[:, 0].mean() - math.pi / 2) < 0.03 and abs(hv[:, 0].std() - 0.3) < 0.03
    assert abs(hv[:, 1].mean() - math.pi / 2) < 0.03 and abs(hv[:, 1].std() - 0.15) < 0.02
    hv0, after0 = learned(apply_overrides(cfg, ["pose.init_learned=false"]))
    assert abs(hv0[:, 0].std() - 0.3) > 0.05  # the random start is something else
    assert after == after0
