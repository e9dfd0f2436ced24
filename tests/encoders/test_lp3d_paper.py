"""LP3D as seed 003 states it: the student SR reads a constant 1 (after the generator fine-tune), no pose head."""

from __future__ import annotations

import pytest
import torch
from encoder_helpers import MICRO_G, micro_distill

from gan3dkit.encoders.config import paper_distill, tiny_distill
from gan3dkit.encoders.lp3d import LP3DConfig
from gan3dkit.encoders.render import PlaneRenderer
from gan3dkit.generate.views import view_cameras


def _generator(latent: str):
    from gan3dkit.networks import TriPlaneGenerator
    from gan3dkit.train.config import train_preset
    from gan3dkit.utils.config import apply_overrides

    cfg = apply_overrides(train_preset("tiny"), [*MICRO_G, f"generator.superres.latent={latent}"])
    torch.manual_seed(0)
    return TriPlaneGenerator(cfg.generator).eval(), cfg


def test_paper_defaults():
    assert paper_distill("lp3d").lp3d.sr_latent == "one"
    assert tiny_distill("lp3d").lp3d.sr_latent == "learned"  # CPU teachers are ordinary EG3D runs
    assert LP3DConfig().pose_head is False  # seed 003: no pose head, no pose loss


def test_constant_one_renderer_needs_a_fine_tuned_generator():
    G_w, _ = _generator("w")
    with pytest.raises(ValueError, match="--stage lp3d-sr"):
        PlaneRenderer(G_w, "one")
    assert PlaneRenderer(G_w, "learned").const_w is not None
    G1, _ = _generator("one")
    with pytest.raises(ValueError, match="sr_latent=one"):
        PlaneRenderer(G1, "learned")
    R = PlaneRenderer(G1, "one")
    assert R.const_w is None and not any("const_w" in k for k in R.state_dict())
    planes = torch.randn(2, 3, 8, 32, 32) * 0.1
    cams = view_cameras(G1, [0.0, 0.2], 0.0, "cpu").to_label()
    with torch.no_grad():
        mine = R(planes, cams, 16)
        theirs = G1.render_planes(planes, cams, torch.randn(2, G1.num_ws, G1.w_dim), neural_rendering_resolution=16,
                                  deterministic_render=True)
    assert torch.equal(mine["image"], theirs["image"])  # the fine-tuned G's SR ignores w as the student's does


def test_distill_with_the_constant_sr_latent(tmp_path):
    from gan3dkit.encoders.distill import distill
    from gan3dkit.encoders.models import load_encoder
    from gan3dkit.networks import DualDiscriminator
    from gan3dkit.train.checkpoint import load_tensors, save_checkpoint

    G1, cfg = _generator("one")
    path = tmp_path / "g1.safetensors"
    save_checkpoint(path, {"G_ema": G1, "D": DualDiscriminator(cfg.discriminator)}, {}, cfg.to_dict(), {"nrr": 16},
                    include_rng=False)
    out = tmp_path / "enc"
    dcfg = micro_distill("lp3d-lt", path, out, run__steps=1, lp3d__sr_latent="one")
    stats = distill(dcfg, resume=False, device="cpu")
    assert stats is not None
    tensors = load_tensors(out / "checkpoint.safetensors")
    assert not any("const_w" in k for k in tensors) and not any(k.startswith("encoder.pose.") for k in tensors)
    student, loaded, _ = load_encoder(out / "checkpoint.safetensors")
    assert loaded.lp3d.sr_latent == "one" and student.renderer.const_w is None
