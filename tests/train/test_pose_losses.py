"""Pose-free loss terms: analytic values, signs, and which parameters their gradients reach."""

from __future__ import annotations

import math

import pytest
import torch

from gan3dkit.cameras import mirror_labels
from gan3dkit.cameras.camera import Cameras
from gan3dkit.cameras.priors import get_prior
from gan3dkit.cameras.samplers import lookat_cam2world
from gan3dkit.methods.hyperpose import (
    HyperPoseConfig,
    HyperPoseLoss,
    nonmatch_loss,
    pose_similarity,
    soft_contrastive_loss,
)
from gan3dkit.methods.posefree import PoseConfig, pose_angles, resolve_prior, view_directions
from gan3dkit.methods.posereg import PoseRegConfig, PoseRegLoss, regression_loss
from gan3dkit.networks import TriPlaneGenerator
from gan3dkit.networks.pose_heads import PoseHeadConfig, PoseHeadDiscriminator
from gan3dkit.train.config import train_preset


def _cams(h: torch.Tensor, v: torch.Tensor, lookat=(0.0, 0.0, 0.0)) -> torch.Tensor:
    return Cameras.from_matrices(lookat_cam2world(h, v, 2.7, lookat).float(), 4.2647).to_label()


def test_pose_angles_invert_eg3d_positions():
    g = torch.Generator().manual_seed(0)
    h = math.pi / 2 + (torch.rand(64, generator=g, dtype=torch.float64) * 2 - 1) * 2.5
    v = math.pi / 2 + (torch.rand(64, generator=g, dtype=torch.float64) * 2 - 1) * 1.2
    lookat = (0.1, -0.2, 0.3)
    got = pose_angles(_cams(h, v, lookat).double())
    assert torch.allclose(got[:, 0], v - math.pi / 2, atol=1e-4)
    assert torch.allclose(got[:, 1], h - math.pi / 2, atol=1e-4)


def test_mirrored_camera_negates_the_yaw_offset():
    h = torch.tensor([1.2, 1.9, 2.2], dtype=torch.float64)
    v = torch.tensor([1.4, 1.6, 1.7], dtype=torch.float64)
    c = _cams(h, v)
    a, m = pose_angles(c), pose_angles(mirror_labels(c))
    assert torch.allclose(m[:, 1], -a[:, 1], atol=1e-5) and torch.allclose(m[:, 0], a[:, 0], atol=1e-5)
    assert torch.allclose(mirror_labels(mirror_labels(c)), c, atol=1e-6)


def test_regression_loss_norms():
    pred, target = torch.tensor([[0.1, -0.2], [0.3, 0.0]]), torch.tensor([[0.0, 0.0], [0.0, 0.5]])
    assert regression_loss(target, target, "l2") == 0
    assert regression_loss(pred, target, "l1").item() == pytest.approx((0.1 + 0.2 + 0.3 + 0.5) / 4)
    assert regression_loss(pred, target, "l2").item() == pytest.approx((0.01 + 0.04 + 0.09 + 0.25) / 4)


def test_pose_similarity_kernel():
    d = torch.nn.functional.normalize(torch.tensor([[0.0, 0.0, 1.0], [math.sin(0.3), 0.0, math.cos(0.3)]]), dim=1)
    k = pose_similarity(d, sigma=0.3)
    assert torch.allclose(k.diag(), torch.ones(2))
    assert k[0, 1].item() == pytest.approx(math.exp(-0.5), rel=1e-4)


def _pose_embedding(dirs: torch.Tensor, m: int = 24, sharp: float = 6.0) -> torch.Tensor:
    """An embedding whose cosines follow pose similarity: scaled directions, padded to m dims."""
    e = torch.zeros(len(dirs), m)
    e[:, :3] = dirs * sharp
    e[:, 3] = 1.0
    return torch.nn.functional.normalize(e, dim=1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_soft_contrastive_prefers_embeddings_that_agree_with_pose(seed):
    g = torch.Generator().manual_seed(seed)
    prior = get_prior("synthetic_heads_wide")
    dirs = view_directions(prior.sample(16, g).to_label().double()).float()
    sim = pose_similarity(dirs, 0.3)
    agree = _pose_embedding(dirs)
    shuffled = agree[torch.randperm(16, generator=g)]
    assert soft_contrastive_loss(agree, sim, 0.1) < soft_contrastive_loss(shuffled, sim, 0.1)


def test_nonmatch_zero_for_pose_only_embeddings_and_positive_for_scene_codes():
    # scenes 0, 1 each rendered at poses a and b (twin layout): [s0@a, s1@b, s0@b, s1@a]
    dirs = torch.nn.functional.normalize(torch.tensor([[0.0, 0, 1], [0.8, 0, 0.6], [0.8, 0, 0.6], [0.0, 0, 1]]), dim=1)
    scene = torch.tensor([0, 1, 0, 1])
    same_pose = (dirs @ dirs.T) > 1 - 1e-6
    sim = pose_similarity(dirs, 0.3)
    k = float(sim[0, 1])  # one embedding per pose, as alike as the two poses are
    e_a, e_b = torch.zeros(24), torch.zeros(24)
    e_a[0], e_b[0], e_b[1] = 1.0, k, math.sqrt(1 - k * k)
    pose_only = torch.stack([e_a, e_b, e_b, e_a])
    loss, n_pull, n_push = nonmatch_loss(pose_only, sim, scene, same_pose)
    assert (n_pull, n_push) == (2, 2) and loss.item() == pytest.approx(0.0, abs=1e-6)
    scene_code = torch.nn.functional.one_hot(scene, 24).float()  # encodes the scene, not the pose
    assert nonmatch_loss(scene_code, sim, scene, same_pose)[0].item() > 1.0


def _tiny_nets(method: str, **head):
    cfg = train_preset("tiny", method)
    G = TriPlaneGenerator(cfg.generator)
    D = PoseHeadDiscriminator(cfg.discriminator, PoseHeadConfig(**head))
    return cfg, G, D


def _grad_norms(module: torch.nn.Module, prefix: str) -> float:
    return sum(float(p.grad.abs().sum()) for n, p in module.named_parameters() if n.startswith(prefix)
               and p.grad is not None)


@pytest.mark.parametrize("method", ["eg3d-posereg", "hyperpose"])
def test_pose_term_gradients_reach_only_their_parameters(method):
    torch.manual_seed(0)
    if method == "eg3d-posereg":
        cfg, G, D = _tiny_nets(method, out_dim=2)
        loss = PoseRegLoss(G, D, cfg.loss, 4, PoseRegConfig(), get_prior("synthetic_heads"))
    else:
        cfg, G, D = _tiny_nets(method, out_dim=24, normalize=True)
        loss = HyperPoseLoss(G, D, cfg.loss, 4, HyperPoseConfig(), get_prior("synthetic_heads"))
    st = loss.step_state(0)
    z, c = loss.arrange_fakes(torch.randn(4, G.z_dim), loss.prior.sample(4).to_label())
    gen = loss.run_G(z, c, st)
    # D phase: detached fakes; the pose term trains D's pose head and shared trunk, never the logit branch or G
    _, aux, _ = loss.fake_terms({k: gen[k].detach() for k in ("image", "image_raw")}, c, st, "D")
    aux.backward()
    assert _grad_norms(D, "pose_head") > 0 and _grad_norms(D, "b4.conv") > 0
    assert _grad_norms(D, "b4.fc") == 0 and _grad_norms(D, "b4.out") == 0
    assert all(p.grad is None for p in G.parameters())
    # G phase: the same term reaches the generator through the images
    D.zero_grad(set_to_none=True)
    D.requires_grad_(False)
    gen = loss.run_G(z, c, st)
    loss.fake_terms(gen, c, st, "G")[1].backward()
    assert _grad_norms(G, "backbone") > 0 and _grad_norms(G, "superresolution") > 0


def test_hyperpose_twin_layout_pairs_scenes_and_poses():
    cfg, G, D = _tiny_nets("hyperpose", out_dim=24, normalize=True)
    loss = HyperPoseLoss(G, D, cfg.loss, 6, HyperPoseConfig(), get_prior("synthetic_heads"))
    z0, c0 = torch.randn(6, G.z_dim), loss.prior.sample(6).to_label()
    z, cams = loss.arrange_fakes(z0, c0)
    c = cams.to_label()
    assert torch.equal(z[:3], z[3:]) and torch.equal(c[:3], c0[:3])
    assert torch.equal(c[3:], torch.roll(c0[:3], 1, 0))  # scene k's twin is rendered at scene k-1's pose
    cond = loss.conditioning(cams, swap_prob=0.5)
    assert torch.equal(cond[:3], cond[3:])  # same mapping input: the twins are the same scene
    scene, flip = loss.draw_layout(6, torch.device("cpu"))
    assert torch.equal(scene, torch.tensor([0, 1, 2, 0, 1, 2]))
    assert torch.equal(flip[3:], torch.roll(flip[:3], 1, 0))  # flips follow the pose pairs


def test_resolve_prior_overrides_and_refuses_missing():
    prior = resolve_prior(PoseConfig(prior="synthetic_heads", yaw_std=0.15), None)
    assert prior.yaw.std == 0.15 and prior.pitch.std == get_prior("synthetic_heads").pitch.std
    assert resolve_prior(PoseConfig(), get_prior("afhq").to_dict()).name == "afhq"
    with pytest.raises(ValueError, match="pose.prior"):
        resolve_prior(PoseConfig(), None)
