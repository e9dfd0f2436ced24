"""PoF3D's cats values, and the two combinations on the one backbone: what each pose term trains, the variants."""

from __future__ import annotations

import math

import pytest
import torch

from gan3dkit.methods.pof3d import mirror_hv
from gan3dkit.methods.posefree import FakeLayout, pose_angles
from gan3dkit.train.config import train_preset
from gan3dkit.train.loop import _build_runtime
from gan3dkit.utils.config import apply_overrides

COMBOS = ("hyperpose+pof3d", "eg3d-posereg+pof3d")


@pytest.mark.parametrize("method", ("pof3d", *COMBOS))
def test_cat_presets_follow_pof3d_cat_sh(method):
    """cat.sh: --dis_cam_weight 10 --pose_gd_weight 10 --gamma 5, neural rendering 64 throughout; ffhq.sh: 2 / 1 / 1."""
    for preset in ("afhq256", "afhq512"):
        cfg = train_preset(preset, method)
        cfg.validate()
        pof = cfg.method.pof3d
        assert (pof.dis_cam_weight, pof.pose_gd_weight, cfg.loss.r1_gamma) == (10.0, 10.0, 5.0)
        assert cfg.loss.nrr_initial == 64 and cfg.loss.nrr_final is None
    face = train_preset("ffhq256", method)
    assert (face.method.pof3d.dis_cam_weight, face.method.pof3d.pose_gd_weight, face.loss.r1_gamma) == (2.0, 1.0, 1.0)
    assert train_preset("afhq512", "eg3d").loss.nrr_final == 128  # EG3D's own cats recipe is untouched


def test_mechanism_option_and_its_d():
    for method in COMBOS:
        cfg = train_preset("tiny", method)
        assert cfg.method.pof3d.mechanism == "full" and cfg.discriminator.c_dim == 2
        only = apply_overrides(cfg, ["pof3d.mechanism=learned_only"])
        with pytest.raises(ValueError, match="c_dim=0"):
            only.validate()
        apply_overrides(only, ["discriminator.c_dim=0"]).validate()
    with pytest.raises(ValueError, match="combinations"):
        apply_overrides(train_preset("tiny", "pof3d"), ["pof3d.mechanism=learned_only"]).validate()


def _runtime(method, *overrides):
    cfg = apply_overrides(train_preset("tiny", method), ["generator.rendering.depth_resolution=6",
                                                          "generator.rendering.depth_resolution_importance=6",
                                                          *overrides])
    cfg.validate()
    torch.manual_seed(0)
    return cfg, _build_runtime(cfg, None, None, torch.device("cpu"))


def _norm(module, prefix):
    return sum(float(p.grad.abs().sum()) for n, p in module.named_parameters()
               if n.startswith(prefix) and p.grad is not None)


def _fakes(rt, phase):
    loss = rt.loss
    st = loss.step_state(0)
    z, c = loss.arrange_fakes(torch.randn(4, rt.G.z_dim), rt.fake_cameras(4))
    gen = loss.run_G(z, c, st)
    if phase == "D":
        gen = {k: v.detach() for k, v in gen.items()}
    return loss, st, gen, c


def test_hyperpose_pof3d_full_pose_aware_d_and_consistency():
    cfg, rt = _runtime("hyperpose+pof3d", "hyperpose.flip_prob=0")
    G, D = rt.G, rt.D
    assert D.camera_head is not None and D.c_dim == 2
    # Dmain: G's poses supervise D's camera branch; the logits (conditioned on its detached reading) do not
    loss, st, gen, c = _fakes(rt, "D")
    logits, aux, stats = loss.fake_terms(gen, c, st, "D")
    assert stats["Loss/D/cam"] > 0
    logits.sum().backward(retain_graph=True)
    assert _norm(D, "camera_head") == 0 and _norm(D, "mapping") > 0
    D.zero_grad(set_to_none=True)
    aux.backward()
    assert _norm(D, "camera_head") > 0 and _norm(D, "pose_head") > 0
    # Gmain: the consistency term alone reaches only the pose mapping
    D.zero_grad(set_to_none=True)
    D.requires_grad_(False)
    loss, st, gen, c = _fakes(rt, "G")
    heads = list(D(loss.d_input(gen, st), None, with_head=True)[1:])
    gd, stats = loss.learned_terms(gen, heads, "G", FakeLayout.plain(4, torch.device("cpu")))
    gd.backward()
    assert stats["Loss/G/pose_gd"] > 0 and gd.item() == pytest.approx(cfg.method.pof3d.pose_gd_weight
                                                                       * stats["Loss/G/pose_gd"])
    assert _norm(G, "pose_mapping") > 0 and _norm(G, "backbone") == 0 and _norm(G, "superresolution") == 0


def test_hyperpose_pof3d_mirrored_fakes_get_mirrored_pose_targets():
    _cfg, rt = _runtime("hyperpose+pof3d", "hyperpose.flip_prob=1")  # every fake mirrored before D
    loss, st, gen, c = _fakes(rt, "D")
    _, _, stats = loss.fake_terms(gen, c, st, "D")
    with torch.no_grad():
        _, _, cam = rt.D(loss.d_input({k: gen[k].flip(-1) for k in ("image", "image_raw")}, st), None,
                         with_head=True)
    mirrored = torch.stack([math.pi - gen["pose"][:, 0], gen["pose"][:, 1]], 1)
    assert stats["Loss/D/cam"] == pytest.approx(torch.nn.functional.mse_loss(cam, mirrored).item(), rel=1e-5)
    assert torch.equal(mirror_hv(gen["pose"], torch.zeros(4, dtype=torch.bool)), gen["pose"])


def test_twin_layout_keeps_pose_and_its_w_together():
    _, rt = _runtime("hyperpose+pof3d")
    _loss, _st, gen, _ = _fakes(rt, "G")
    assert torch.allclose(rt.G.pose_mapping(gen["pose_w"]), gen["pose"])
    assert torch.allclose(gen["pose"][2], gen["pose"][1]) and torch.allclose(gen["pose"][3], gen["pose"][0])


def test_learned_only_variant_has_no_pose_terms():
    for method in COMBOS:
        _, rt = _runtime(method, "pof3d.mechanism=learned_only", "discriminator.c_dim=0")
        assert rt.D.c_dim == 0 and rt.D.camera_head is None
        for phase in ("G", "D"):
            loss, st, gen, c = _fakes(rt, phase)
            _, _, stats = loss.fake_terms(gen, c, st, phase)
            assert not any(k.endswith(("/pose_gd", "/cam")) for k in stats)


def test_posereg_pof3d_regresses_the_learned_pose_and_keeps_it_consistent():
    _cfg, rt = _runtime("eg3d-posereg+pof3d")
    G, D = rt.G, rt.D
    assert D.c_dim == 2 and D.camera_head is None  # the regression branch is the pose-aware D's camera head
    loss, st, gen, c = _fakes(rt, "D")
    _logits, _aux, stats = loss.fake_terms(gen, c, st, "D")
    with torch.no_grad():
        _, pred = D(loss.d_input(gen, st), None, with_head=True)
    target = pose_angles(rt.G.pose_mapping.cameras(gen["pose"]))  # the learned pose G rendered at
    assert stats["Loss/D/pose_reg"] == pytest.approx((pred - target).square().mean().item(), rel=1e-4)
    assert "Loss/D/cam" not in stats  # L_regression is the D-side supervision; not weighted twice
    D.requires_grad_(False)
    loss, st, gen, c = _fakes(rt, "G")
    heads = list(D(loss.d_input(gen, st), None, with_head=True)[1:])
    gd, stats = loss.learned_terms(gen, heads, "G", FakeLayout.plain(4, torch.device("cpu")))
    gd.backward()
    assert stats["Loss/G/pose_gd"] > 0
    assert _norm(G, "pose_mapping") > 0 and _norm(G, "backbone") == 0
